//! The Kafka client side (feature `kafka`): the topics (created with a configured partition
//! count when missing) and the idempotent producer of [`Record`]s. Every record is keyed by its
//! conversation id.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

use crate::kafka::KafkaConfig;
use crate::record::{Event, Record};

/// Bound on admin requests (topic creation) against a broker that is down.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(10);

impl KafkaConfig {
    /// The connection settings every client of these topics shares (producer, sink, admin).
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        for (key, value) in &self.options {
            config.set(key, value);
        }
        config
    }

    /// Hands every property to librdkafka now, without connecting: an unknown key or a bad
    /// value (or `security.protocol=SSL` in a librdkafka built without OpenSSL) fails here with
    /// librdkafka's own message, instead of in a retry loop later.
    pub fn check(&self) -> Result<(), KafkaError> {
        self.client_config().create_native_config().map(drop)
    }
}

/// Whether a Kafka error may clear by itself (a broker down, a leader moving, a timeout) as
/// opposed to one that fails the same way again (a record too large, authorization).
pub fn is_transient(err: &KafkaError) -> bool {
    use RDKafkaErrorCode as C;
    match err.rdkafka_error_code() {
        Some(
            C::MessageSizeTooLarge
            | C::InvalidMessage
            | C::InvalidMessageSize
            | C::TopicAuthorizationFailed
            | C::ClusterAuthorizationFailed
            | C::UnknownTopicOrPartition
            | C::InvalidConfig
            | C::UnsupportedVersion,
        ) => false,
        Some(_) => true,
        // No broker code: the client itself (a closed client, a config error) — permanent.
        None => false,
    }
}

/// Creates the events and dead-letter topics when missing; existing ones are left as they are
/// (their partition count is never changed: that would move conversations between partitions).
pub async fn ensure_topics(config: &KafkaConfig) -> Result<(), KafkaError> {
    let admin: AdminClient<DefaultClientContext> = config.client_config().create()?;
    let topics = [
        NewTopic::new(
            &config.events_topic,
            config.partitions,
            TopicReplication::Fixed(config.replication),
        ),
        NewTopic::new(
            &config.dead_letter_topic,
            1,
            TopicReplication::Fixed(config.replication),
        ),
    ];
    let options = AdminOptions::new().operation_timeout(Some(ADMIN_TIMEOUT));
    for result in admin.create_topics(&topics, &options).await? {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                tracing::warn!(%topic, ?code, "creating topic failed");
                return Err(KafkaError::AdminOp(code));
            }
        }
    }
    Ok(())
}

/// Where an acknowledged record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acked {
    pub partition: i32,
    pub offset: i64,
}

/// The idempotent producer: `enable.idempotence` (so librdkafka's retries never duplicate or
/// reorder within a partition) and `acks=all` (an ack means every in-sync replica has it).
#[derive(Clone)]
pub struct EventProducer {
    producer: FutureProducer,
    topic: String,
}

impl std::fmt::Debug for EventProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventProducer")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl EventProducer {
    /// The librdkafka producer, for what this type does not wrap (purging, flushing).
    pub fn inner(&self) -> &FutureProducer {
        &self.producer
    }

    pub fn new(config: &KafkaConfig) -> Result<Self, KafkaError> {
        let producer: FutureProducer = config
            .client_config()
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set(
                "message.timeout.ms",
                config.delivery_timeout.as_millis().to_string(),
            )
            // Batching: a few ms of linger buys large batches at chat rates.
            .set("linger.ms", "5")
            .set("compression.type", "lz4")
            .create()?;
        Ok(EventProducer {
            producer,
            topic: config.events_topic.clone(),
        })
    }

    /// Resolves when Kafka acknowledged the record (acks=all) or the delivery timeout passed.
    /// The record is keyed by its conversation id.
    pub async fn send(&self, event: Event) -> Result<Acked, KafkaError> {
        self.enqueue(event, None)?.await
    }

    /// Hands the record to the producer's queue now (so records enqueued one after another
    /// keep that order within a partition) and returns the wait for its acknowledgement.
    /// `partition`: `None` chooses by key; barrier markers name theirs. Fails at once when the
    /// producer's queue is full.
    pub fn enqueue(
        &self,
        event: Event,
        partition: Option<i32>,
    ) -> Result<impl Future<Output = Result<Acked, KafkaError>> + Send + 'static, KafkaError> {
        let key = event.conversation_id().to_owned();
        let payload = Record::from(event).to_bytes();
        let mut record = FutureRecord::to(&self.topic).key(&key).payload(&payload);
        if let Some(partition) = partition {
            record = record.partition(partition);
        }
        let delivery = self.producer.send_result(record).map_err(|(err, _)| err)?;
        Ok(async move {
            match delivery.await {
                Ok(Ok(delivery)) => Ok(Acked {
                    partition: delivery.partition,
                    offset: delivery.offset,
                }),
                Ok(Err((err, _))) => Err(err),
                // The producer dropped the record without a report (it is shutting down).
                Err(_) => Err(KafkaError::Canceled),
            }
        })
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
        let topic = self.topic.clone();
        tokio::task::spawn_blocking(move || {
            let metadata = producer
                .client()
                .fetch_metadata(Some(&topic), timeout)
                .map_err(|e| format!("no metadata within {timeout:?}: {e}"))?;
            match metadata.topics().iter().find(|t| t.name() == topic) {
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
        let topic = self.topic.clone();
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
