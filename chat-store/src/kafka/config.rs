//! [`KafkaConfig`]: where Kafka is and how the topics look, with the defaults and their reasons.
//! Plain settings, compiled without the `kafka` feature: the broker's configuration holds them
//! whether or not the binary links a Kafka client.

use std::time::Duration;

/// Default partitions of the events topic: one conversation lives in one partition, so this is
/// the most sink consumers that can work in parallel; 12 divides evenly among 1–4–6–12 sinks.
pub const DEFAULT_PARTITIONS: i32 = 12;
/// How long the producer keeps retrying one record before reporting it failed: past this the
/// sender's RECEIPT is refused (docs/persistence.md) rather than held indefinitely.
pub const DEFAULT_DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// Where Kafka is and how the topics look.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// `host:port[,host:port…]`.
    pub brokers: String,
    /// Accepted messages and status changes, in one topic so a conversation's order holds.
    pub events_topic: String,
    /// Records the sink could not apply (malformed, future version, refused by the schema).
    pub dead_letter_topic: String,
    pub partitions: i32,
    /// 3 in production (with `min.insync.replicas=2`); 1 for a single test broker.
    pub replication: i32,
    pub delivery_timeout: Duration,
    /// librdkafka client properties for every client of these topics (producer, consumer,
    /// admin), as `(key, value)`: the security settings (`security.protocol`, `ssl.*`,
    /// `sasl.*`) and any tuning. Set before the producer's and consumer's own settings, which
    /// win: idempotence, `acks=all`, manual offset commits are not the operator's to change.
    pub options: Vec<(String, String)>,
    /// The consumer group of the sink moving the events topic into PostgreSQL
    /// (`stompbox-sink --group-id`): the broker names it when persistence lags.
    pub sink_group: String,
}

impl KafkaConfig {
    pub fn new(brokers: impl Into<String>) -> Self {
        KafkaConfig {
            brokers: brokers.into(),
            events_topic: "stompbox.chat.events".into(),
            dead_letter_topic: "stompbox.chat.events.dlt".into(),
            partitions: DEFAULT_PARTITIONS,
            replication: 1,
            delivery_timeout: DEFAULT_DELIVERY_TIMEOUT,
            options: Vec::new(),
            sink_group: "stompbox-sink".into(),
        }
    }
}
