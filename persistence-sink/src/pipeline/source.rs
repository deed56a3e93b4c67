//! Where a partition's worker takes its records from: its own librdkafka partition queue
//! (split off the consumer's queue at start, for every partition the topic had then), and a
//! channel from the fetch task (`dispatch`) for what still arrives on the consumer's queue —
//! the records of partitions added to the topic later.
//!
//! Why a queue per partition: librdkafka fills one consumer queue in fetch order, and with a
//! backlog that is tens of thousands of one partition's records in a row. Fed from that one
//! queue, a busy partition stopped the fetch task and with it every other partition, so the
//! sink caught up one partition — one PostgreSQL connection — at a time (measured 2026-12-08:
//! PostgreSQL at ~0.6 of a core, 26–44k rows/s against a 58–63k COPY ceiling;
//! docs/benchmarks.md). With its own queue a partition's backlog waits in librdkafka, bounded
//! by `queued.min.messages` per partition (set in `pipeline`), and never blocks another's. A
//! split partition queue stays split through rebalances: librdkafka does not forward a queue
//! the application has routed itself back to the consumer's queue when the partition is
//! assigned again.

use std::sync::Arc;

use chat_store::kafka;
use rdkafka::consumer::Consumer;
use rdkafka::consumer::stream_consumer::StreamPartitionQueue;
use rdkafka::error::KafkaError;
use tokio::sync::mpsc;

use crate::pipeline::consumed::Consumed;
use crate::pipeline::context::{SinkConsumer, SinkContext};

/// A partition's records, in offset order.
pub(crate) struct Source {
    pub records_rx: mpsc::Receiver<Consumed>,
    pub queue: Option<StreamPartitionQueue<SinkContext>>,
}

impl Source {
    /// The next record; `Ok(None)` once the fetch task has stopped (shutdown): the channel is
    /// then closed, and the partition queue is no longer read.
    pub async fn recv(&mut self) -> Result<Option<Consumed>, KafkaError> {
        loop {
            let Some(queue) = &self.queue else {
                return Ok(self.records_rx.recv().await);
            };
            tokio::select! {
                biased;
                record = self.records_rx.recv() => return Ok(record),
                msg = queue.recv() => match msg {
                    Ok(msg) => return Ok(Some(Consumed::from(&msg))),
                    Err(e) if kafka::is_transient(&e) => {
                        tracing::warn!(error = %e, "partition queue error; continuing");
                    }
                    Err(e) => return Err(e),
                },
            }
        }
    }
}

/// Splits every partition `topic` has now off the consumer's queue. Call before the consumer
/// is first polled, so that no record of these partitions is in its queue already. Empty when
/// the topic's metadata cannot be read (everything then goes through the fetch task).
pub(crate) async fn split(
    consumer: &Arc<SinkConsumer>,
    topic: &str,
) -> Vec<(i32, StreamPartitionQueue<SinkContext>)> {
    let partitions = {
        let consumer = Arc::clone(consumer);
        let topic = topic.to_owned();
        tokio::task::spawn_blocking(move || {
            consumer
                .fetch_metadata(Some(&topic), std::time::Duration::from_secs(10))
                .map(|metadata| {
                    metadata
                        .topics()
                        .iter()
                        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
                        .collect::<Vec<i32>>()
                })
        })
        .await
    };
    let partitions = match partitions {
        Ok(Ok(partitions)) => partitions,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "no topic metadata: every partition through one queue");
            return Vec::new();
        }
        Err(_) => return Vec::new(),
    };
    partitions
        .into_iter()
        .filter_map(|p| consumer.split_partition_queue(topic, p).map(|q| (p, q)))
        .collect()
}
