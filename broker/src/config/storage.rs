//! Where chat messages live: the embedded store, PostgreSQL, or Kafka in front of PostgreSQL.
//! The Kafka defaults are `KafkaConfig`'s (one set, shared with the sink).

use std::time::Duration;

// The one place this crate names the Kafka settings' type.
use chat_store::kafka::KafkaConfig;

use super::error::ConfigError;
use super::setting::settings;

/// Messages accepted but not yet acknowledged by Kafka, at most. Past it new sends are
/// refused at once (`UNAVAILABLE`) instead of queueing without bound while Kafka is down.
const DEFAULT_MAX_PENDING: usize = 10_000;

/// `KafkaConfig`'s defaults (its brokers are the one setting without one).
fn kafka_defaults() -> KafkaConfig {
    KafkaConfig::new(String::new())
}

settings! {
    /// The storage settings as written; [`StorageConfig`] is what the broker opens.
    pub struct StorageSettings, layer StorageLayer, heading Some("Storage (default: embedded SQLite under --data-dir)");

    /// PostgreSQL instead of the embedded store.
    postgres_url: Option<String> = None,
        "URL", "Chat on PostgreSQL (`postgres://user@host:port/db`) instead of the embedded store; with --kafka-brokers, the store the sink fills and reads come from";
    /// Kafka in front of PostgreSQL.
    kafka_brokers: Option<String> = None,
        "HOSTS", "Accepted messages go to Kafka (`host:port,…`) and a sink moves them into PostgreSQL; needs --postgres-url";
    /// The events topic; its dead-letter topic is this name + `.dlt`.
    kafka_topic: String = kafka_defaults().events_topic,
        "NAME", "Topic of accepted messages and status changes";
    kafka_partitions: i32 = kafka_defaults().partitions,
        "N", "Partitions of the events topic when the broker creates it";
    kafka_replication: i32 = kafka_defaults().replication,
        "N", "Replication factor of topics the broker creates (3 in production)";
    kafka_timeout: Duration = kafka_defaults().delivery_timeout,
        "DURATION", "How long a message waits for Kafka's ack before its sender is told it was not stored";
    /// See [`KafkaSettings::max_pending`].
    kafka_max_pending: usize = DEFAULT_MAX_PENDING,
        "N", "Messages waiting for Kafka's ack, at most; past it sends are refused";
}

/// Where chat messages live. Neither set: the embedded SQLite store under `data_dir` (one
/// machine, no services). `postgres_url` alone: PostgreSQL directly (every accepted message
/// committed before its RECEIPT; several nodes share history). Both: the write path for
/// scale — accepted messages go to Kafka, a sink (`stompbox-sink`) moves them into
/// PostgreSQL, and reads come from PostgreSQL (docs/persistence.md).
#[derive(Debug, Clone, Default)]
pub struct StorageConfig {
    pub postgres_url: Option<String>,
    pub kafka: Option<KafkaSettings>,
}

/// The streamed store's settings: where Kafka is and how its topics look (`KafkaConfig`, with
/// its defaults and their reasons), plus the broker's own bound on unacknowledged messages.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    pub kafka: KafkaConfig,
    /// Messages accepted but not yet acknowledged by Kafka, at most. Past it new sends are
    /// refused at once (`UNAVAILABLE`) instead of queueing without bound while Kafka is down.
    pub max_pending: usize,
}

impl KafkaSettings {
    pub fn new(brokers: impl Into<String>) -> Self {
        Self {
            kafka: KafkaConfig::new(brokers),
            max_pending: DEFAULT_MAX_PENDING,
        }
    }
}

impl From<StorageSettings> for StorageConfig {
    fn from(settings: StorageSettings) -> Self {
        let kafka = settings.kafka_brokers.map(|brokers| {
            let mut kafka = KafkaConfig::new(brokers);
            kafka.dead_letter_topic = format!("{}.dlt", settings.kafka_topic);
            kafka.events_topic = settings.kafka_topic;
            kafka.partitions = settings.kafka_partitions;
            kafka.replication = settings.kafka_replication;
            kafka.delivery_timeout = settings.kafka_timeout;
            KafkaSettings {
                kafka,
                max_pending: settings.kafka_max_pending,
            }
        });
        Self {
            postgres_url: settings.postgres_url,
            kafka,
        }
    }
}

impl StorageConfig {
    /// Kafka alone has nowhere to read history from; topics need a partition and a replica.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let Some(kafka) = &self.kafka else {
            return Ok(());
        };
        if self.postgres_url.is_none() {
            return Err(ConfigError::Invalid {
                key: "kafka_brokers",
                reason: "needs postgres_url too: history and sync read the PostgreSQL the sink \
                         fills"
                    .into(),
            });
        }
        if kafka.kafka.partitions < 1 || kafka.kafka.replication < 1 || kafka.max_pending == 0 {
            return Err(ConfigError::Invalid {
                key: "kafka_partitions",
                reason: "kafka_partitions, kafka_replication and kafka_max_pending must be at \
                         least 1"
                    .into(),
            });
        }
        Ok(())
    }
}
