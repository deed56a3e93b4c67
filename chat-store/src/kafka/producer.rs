//! [`EventProducer`]: the idempotent producer of [`Record`]s, keyed by conversation id.
//!
//! Why not rdkafka's `FutureProducer`: it gives each record a future, and the streamed store
//! spawned a task per record to await it (to release the record's pending slot and in-flight
//! ticket whether or not the sender still waits), then told the sender through a second
//! channel: two allocations, a task and two cross-thread wake-ups per record on top of
//! librdkafka's own work. The producer measured at 45–47 % of a plain acks=all producer
//! (docs/benchmarks.md). Here the record carries what it holds (`H`: the store's slot and
//! ticket) and the sender's channel through librdkafka as its delivery opaque; the polling
//! thread's delivery report releases the one and answers the other: one allocation and one
//! channel per record, no task. The payload is encoded into a reused per-thread buffer
//! (librdkafka copies it), not a fresh `Vec` per record.

use std::cell::RefCell;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use tokio::sync::oneshot;

use super::client::ADMIN_TIMEOUT;
use crate::kafka::KafkaConfig;
use crate::record::{Event, RECORD_VERSION, Record};

/// Where an acknowledged record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acked {
    pub partition: i32,
    pub offset: i64,
}

/// A record's delivery report: acknowledged (acks=all), or why not.
pub type Report = Result<Acked, KafkaError>;

/// Called on the producer's polling thread with every failed delivery's error (the streamed
/// store replaces a producer that may be stuck); it must not block.
pub type OnFailure = Box<dyn Fn(&KafkaError) + Send + Sync>;

/// What librdkafka carries with a record until its delivery report.
pub struct Pending<H> {
    report_tx: oneshot::Sender<Report>,
    held: H,
}

/// The producer's context: turns delivery reports into answers.
pub struct Reports<H> {
    on_failure: Option<OnFailure>,
    held: PhantomData<fn(H)>,
}

impl<H> ClientContext for Reports<H> {}

impl<H: Send + Sync + 'static> ProducerContext for Reports<H> {
    type DeliveryOpaque = Box<Pending<H>>;

    fn delivery(&self, result: &DeliveryResult<'_>, pending: Box<Pending<H>>) {
        let report = match result {
            Ok(message) => Ok(Acked {
                partition: rdkafka::Message::partition(message),
                offset: rdkafka::Message::offset(message),
            }),
            Err((error, _)) => {
                if let Some(on_failure) = &self.on_failure {
                    on_failure(error);
                }
                Err(error.clone())
            }
        };
        let Pending { report_tx, held } = *pending;
        // Released before the answer: whoever the answer wakes finds the slot free.
        drop(held);
        let _ = report_tx.send(report);
    }
}

/// The wait for one record's delivery report. A producer destroyed before reporting (purged at
/// shutdown) answers [`KafkaError::Canceled`].
#[derive(Debug)]
pub struct Ack(oneshot::Receiver<Report>);

impl Future for Ack {
    type Output = Report;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Report> {
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|answer| answer.unwrap_or(Err(KafkaError::Canceled)))
    }
}

/// The idempotent producer: `enable.idempotence` (so librdkafka's retries never duplicate or
/// reorder within a partition) and `acks=all` (an ack means every in-sync replica has it).
/// `H`: what each record holds until its delivery report (released on the polling thread).
pub struct EventProducer<H: Send + Sync + 'static = ()> {
    producer: ThreadedProducer<Reports<H>>,
    topic: Arc<str>,
}

impl<H: Send + Sync + 'static> Clone for EventProducer<H> {
    fn clone(&self) -> Self {
        Self {
            producer: self.producer.clone(),
            topic: Arc::clone(&self.topic),
        }
    }
}

impl<H: Send + Sync + 'static> std::fmt::Debug for EventProducer<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventProducer")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

/// The producer's batching defaults, which `--kafka-option` may replace (unlike idempotence,
/// `acks=all` and the delivery timeout, which the guarantees rest on). A few ms of linger buys
/// large batches at chat rates. lz4 shrinks what crosses the network to Kafka and what it
/// stores, at a CPU cost in the broker that is per partition batch, not per byte: with 12
/// partitions at 5k msgs/s a batch holds a couple of records, and lz4 (a fresh compression
/// context each) was ≈ 4 % of the broker's CPU (docs/benchmarks.md, "chatcpu2"). Where Kafka
/// is near and the CPU is short, `--kafka-option compression.type=none` gives that back.
const TUNING: [(&str, &str); 2] = [("linger.ms", "5"), ("compression.type", "lz4")];

thread_local! {
    /// The encode buffer of this thread: librdkafka copies the payload, so one buffer serves
    /// every record a thread enqueues.
    static PAYLOAD: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

impl EventProducer<()> {
    pub fn new(config: &KafkaConfig) -> Result<Self, KafkaError> {
        Self::with_hook(config, None)
    }

    /// Resolves when Kafka acknowledged the record (acks=all) or the delivery timeout passed.
    /// The record is keyed by its conversation id.
    pub async fn send(&self, event: Event) -> Report {
        self.enqueue(&event, None, ())?.await
    }
}

impl<H: Send + Sync + 'static> EventProducer<H> {
    /// A producer whose failed deliveries are also reported to `on_failure`.
    pub fn with_hook(
        config: &KafkaConfig,
        on_failure: Option<OnFailure>,
    ) -> Result<Self, KafkaError> {
        let producer = producer_config(config).create_with_context(Reports {
            on_failure,
            held: PhantomData,
        })?;
        Ok(EventProducer {
            producer,
            topic: config.events_topic.as_str().into(),
        })
    }

    /// The librdkafka producer, for what this type does not wrap (purging, flushing).
    pub fn inner(&self) -> &ThreadedProducer<Reports<H>> {
        &self.producer
    }

    /// Hands the record to the producer's queue now (so records enqueued one after another
    /// keep that order within a partition) and returns the wait for its acknowledgement;
    /// `held` is dropped when Kafka answers (or here, if the record is refused). `partition`:
    /// `None` chooses by key; barrier markers name theirs. Fails at once when the producer's
    /// queue is full.
    pub fn enqueue(
        &self,
        event: &Event,
        partition: Option<i32>,
        held: H,
    ) -> Result<Ack, KafkaError> {
        let (report_tx, report_rx) = oneshot::channel();
        let pending = Box::new(Pending { report_tx, held });
        PAYLOAD.with_borrow_mut(|payload| {
            payload.clear();
            Record::encode(RECORD_VERSION, event, payload);
            let mut record = BaseRecord::with_opaque_to(&self.topic, pending)
                .key(event.conversation_id())
                .payload(payload.as_slice());
            if let Some(partition) = partition {
                record = record.partition(partition);
            }
            self.producer.send(record).map_err(|(err, _)| err)
        })?;
        Ok(Ack(report_rx))
    }

    /// Whether Kafka answers for the events topic within `timeout` (its metadata, with at
    /// least one partition): the producer's probe for the broker's readiness.
    pub async fn reachable(&self, timeout: Duration) -> Result<(), String> {
        self.partitions(timeout).await.map(|_| ())
    }

    /// The events topic's partition count, from the cluster's metadata; `None` while the
    /// topic does not exist or Kafka cannot be reached.
    pub async fn partition_count(&self) -> Option<i32> {
        self.partitions(ADMIN_TIMEOUT).await.ok()
    }

    /// The events topic's partition count, or why there is none; a blocking call, so on the
    /// blocking pool.
    async fn partitions(&self, timeout: Duration) -> Result<i32, String> {
        let producer = self.producer.clone();
        let topic = Arc::clone(&self.topic);
        tokio::task::spawn_blocking(move || {
            let metadata = producer
                .client()
                .fetch_metadata(Some(&topic), timeout)
                .map_err(|e| format!("no metadata within {timeout:?}: {e}"))?;
            match metadata.topics().iter().find(|t| t.name() == &*topic) {
                Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
                    Ok(t.partitions().len() as i32)
                }
                _ => Err(format!("topic {topic} is not there (yet)")),
            }
        })
        .await
        .unwrap_or_else(|e| Err(format!("metadata request failed: {e}")))
    }

    /// Each partition's low and high watermarks (the first offset held, and the next to be
    /// written), in partition order (blocking calls, so on the blocking pool); `None` while
    /// Kafka cannot be reached.
    pub async fn watermarks(&self, partitions: i32) -> Option<Vec<(i64, i64)>> {
        let producer = self.producer.clone();
        let topic = Arc::clone(&self.topic);
        tokio::task::spawn_blocking(move || {
            (0..partitions)
                .map(|p| producer.client().fetch_watermarks(&topic, p, ADMIN_TIMEOUT))
                .collect::<Result<Vec<_>, _>>()
                .ok()
        })
        .await
        .ok()
        .flatten()
    }
}

/// The producer's settings: the shared client settings (`--kafka-option`), the batching
/// defaults ([`TUNING`]) where those name none, then what the guarantees rest on, which no
/// option replaces.
fn producer_config(config: &KafkaConfig) -> ClientConfig {
    let mut client = config.client_config();
    for (key, value) in TUNING {
        if client.get(key).is_none() {
            client.set(key, value);
        }
    }
    client
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set(
            "message.timeout.ms",
            config.delivery_timeout.as_millis().to_string(),
        );
    client
}

/// Whether `error` means the producer's queue is full (the caller may wait and try again).
pub fn is_queue_full(error: &KafkaError) -> bool {
    error.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_replace_the_batching_defaults_but_not_the_guarantees() {
        let mut config = KafkaConfig::new("127.0.0.1:9");
        let defaults = producer_config(&config);
        assert_eq!(defaults.get("compression.type"), Some("lz4"));
        assert_eq!(defaults.get("linger.ms"), Some("5"));
        config.options = [
            ("compression.type", "none"),
            ("linger.ms", "20"),
            ("enable.idempotence", "false"),
            ("acks", "1"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .to_vec();
        let tuned = producer_config(&config);
        assert_eq!(tuned.get("compression.type"), Some("none"));
        assert_eq!(tuned.get("linger.ms"), Some("20"));
        assert_eq!(tuned.get("enable.idempotence"), Some("true"));
        assert_eq!(tuned.get("acks"), Some("all"));
    }
}
