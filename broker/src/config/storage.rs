//! Where chat messages live: the embedded store, PostgreSQL, or Kafka in front of PostgreSQL.
//! The Kafka defaults are `KafkaConfig`'s (one set, shared with the sink).

use std::str::FromStr;
use std::time::Duration;

use clap::ArgMatches;
use clap::builder::ValueParser;
use serde::Deserializer;

// The one place this crate names the Kafka settings' type.
use chat_store::kafka::KafkaConfig;

use super::error::ConfigError;
use super::setting::{Value, settings};

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
    /// librdkafka properties for every Kafka client: TLS, SASL, tuning. The flag is singular
    /// because it repeats; never comma-split (librdkafka values may hold commas).
    kafka_options as "kafka_option" | "kafka_options": Vec<KafkaOption> = Vec::new(),
        "KEY=VALUE", "librdkafka property for the Kafka clients, e.g. security.protocol=SSL, ssl.ca.location=FILE, sasl.mechanism=PLAIN; repeat for several; a bad one fails the start",
        hide_env_values(true);
    /// Named when persistence lags; the sink's own `--group-id` is what it is.
    kafka_sink_group: String = kafka_defaults().sink_group,
        "NAME", "Consumer group of the stompbox-sink that moves the topic into PostgreSQL (its --group-id); named in the warning while it lags";
}

/// One librdkafka property, `key=value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaOption {
    pub key: String,
    pub value: String,
}

impl FromStr for KafkaOption {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() => Ok(KafkaOption {
                key: key.trim().to_owned(),
                value: value.to_owned(),
            }),
            _ => Err(format!("{s:?} is not KEY=VALUE (a librdkafka property)")),
        }
    }
}

impl std::fmt::Display for KafkaOption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.key, self.value)
    }
}

/// A repeated flag (no comma splitting), or a list of `"key=value"` strings in the file.
impl Value for Vec<KafkaOption> {
    fn parser() -> ValueParser {
        ValueParser::new(|text: &str| text.parse::<KafkaOption>())
    }

    fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        <Vec<String> as serde::Deserialize>::deserialize(deserializer)?
            .iter()
            .map(|text| text.parse().map_err(serde::de::Error::custom))
            .collect()
    }

    fn shown(&self) -> Option<String> {
        // Never shown: values may be secrets (sasl.password), and the default is empty.
        None
    }

    fn shape(arg: clap::Arg) -> clap::Arg {
        arg.action(clap::ArgAction::Append)
    }

    fn from_matches(matches: &ArgMatches, id: &str) -> Option<Self> {
        matches
            .get_many::<KafkaOption>(id)
            .map(|values| values.cloned().collect())
    }
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
            kafka.sink_group = settings.kafka_sink_group;
            kafka.options = (settings.kafka_options.iter())
                .map(|o| (o.key.clone(), o.value.clone()))
                .collect();
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
