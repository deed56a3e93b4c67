//! The fetch task: reads the consumer and routes each record to its partition's worker
//! (`worker`), announcing a partition's channel the first time one of its records arrives.
//! Partitions are applied side by side: librdkafka hands records out a fetched chunk of one
//! partition at a time, so one shared batch would mostly hold a single partition and keep one
//! PostgreSQL connection busy while the others idle.
//!
//! A worker's channel holds at most one batch: when PostgreSQL stalls, the dispatcher stalls
//! too and stops taking records off the consumer (librdkafka's own prefetch queue is bounded).
//! That is why the partitions the topic had at start do not come through here but each
//! through its own queue (`source`): `split` are their workers' channels, used only if one of
//! their records still reaches the consumer's queue.

use std::collections::HashMap;
use std::sync::Arc;

use chat_store::kafka;
use rdkafka::error::KafkaError;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::pipeline::consumed::Consumed;
use crate::pipeline::context::SinkConsumer;

/// What the fetch task tells the apply side.
pub(crate) enum Dispatched {
    /// The first record of this partition arrived: its records come through `records_rx`.
    Partition {
        partition: i32,
        records_rx: mpsc::Receiver<Consumed>,
    },
    /// The consumer failed permanently; the task has stopped.
    Failed(KafkaError),
}

/// Starts the fetch task; it stops (closing every channel) on `shutdown`.
pub(crate) fn spawn(
    consumer: Arc<SinkConsumer>,
    per_partition: usize,
    split: HashMap<i32, mpsc::Sender<Consumed>>,
    shutdown: CancellationToken,
) -> mpsc::Receiver<Dispatched> {
    let (dispatched_tx, dispatched_rx) = mpsc::channel(16);
    tokio::spawn(async move {
        let mut partitions = split;
        loop {
            let msg = tokio::select! {
                () = shutdown.cancelled() => return,
                msg = consumer.recv() => msg,
            };
            let consumed = match msg {
                Ok(msg) => Consumed::from(&msg),
                Err(e) if kafka::is_transient(&e) => {
                    tracing::warn!(error = %e, "consumer error; continuing");
                    continue;
                }
                Err(e) => {
                    let _ = dispatched_tx.send(Dispatched::Failed(e)).await;
                    return;
                }
            };
            let partition = consumed.partition;
            let records_tx = match partitions.get(&partition) {
                Some(records_tx) => records_tx.clone(),
                None => {
                    let (records_tx, records_rx) = mpsc::channel(per_partition.max(1));
                    let announced = Dispatched::Partition {
                        partition,
                        records_rx,
                    };
                    if dispatched_tx.send(announced).await.is_err() {
                        return;
                    }
                    partitions.insert(partition, records_tx.clone());
                    records_tx
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                sent = records_tx.send(consumed) => if sent.is_err() { return },
            }
        }
    });
    dispatched_rx
}
