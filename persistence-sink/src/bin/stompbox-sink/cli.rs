//! The sink's flags, each also an environment variable (the deployment sets env; a developer
//! types flags), turned into the library's configs.

use std::net::SocketAddr;
use std::time::Duration;

use chat_store::PostgresConfig;
use chat_store::kafka::{DEFAULT_PARTITIONS, KafkaConfig};
use clap::Parser;
use persistence_sink::pipeline::SinkConfig;

/// Moves Stompbox's accepted messages and status changes from Kafka into PostgreSQL.
#[derive(Debug, Parser)]
#[command(name = "stompbox-sink", version)]
pub struct Cli {
    /// Kafka bootstrap servers, `host:port[,host:port…]`.
    #[arg(long, env = "STOMPBOX_KAFKA_BROKERS")]
    pub kafka_brokers: String,
    /// librdkafka property for the Kafka clients (`security.protocol=SSL`,
    /// `ssl.ca.location=FILE`, `sasl.mechanism=PLAIN`, …); repeat for several. A bad key or
    /// value fails the start with librdkafka's message.
    #[arg(long = "kafka-option", value_name = "KEY=VALUE", value_parser = kafka_option)]
    pub kafka_options: Vec<(String, String)>,
    /// PostgreSQL, a `postgres://` URL or a `key=value` connection string; TLS as libpq
    /// (`sslmode=verify-full&sslrootcert=FILE`, `sslcert`, `sslkey`).
    #[arg(long, env = "STOMPBOX_POSTGRES_URL", hide_env_values = true)]
    pub postgres_url: String,
    /// Consumer group: sinks sharing it share the partitions.
    #[arg(long, env = "STOMPBOX_SINK_GROUP_ID", default_value = "stompbox-sink")]
    pub group_id: String,
    #[arg(
        long,
        env = "STOMPBOX_EVENTS_TOPIC",
        default_value = "stompbox.chat.events"
    )]
    pub events_topic: String,
    #[arg(
        long,
        env = "STOMPBOX_DEAD_LETTER_TOPIC",
        default_value = "stompbox.chat.events.dlt"
    )]
    pub dead_letter_topic: String,
    /// Partitions of the events topic when the sink creates it (an existing topic keeps its own).
    #[arg(long, env = "STOMPBOX_KAFKA_PARTITIONS", default_value_t = DEFAULT_PARTITIONS)]
    pub partitions: i32,
    /// Most records per batch.
    #[arg(long, env = "STOMPBOX_SINK_BATCH_SIZE", default_value_t = SinkConfig::default().batch_max)]
    pub batch_size: usize,
    /// Longest a batch waits to fill after its first record (`20ms`, `1s`).
    #[arg(long, env = "STOMPBOX_SINK_BATCH_TIME", default_value = "20ms", value_parser = humantime::parse_duration)]
    pub batch_time: Duration,
    /// Partitions of a batch applied at the same time, one PostgreSQL connection each.
    #[arg(long, env = "STOMPBOX_SINK_CONNECTIONS", default_value_t = SinkConfig::default().connections)]
    pub connections: usize,
    /// How long the consumer group waits for a silent (crashed) sink before moving its
    /// partitions; a restarted sink may wait as long to get them back.
    #[arg(long, env = "STOMPBOX_SINK_SESSION_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub session_timeout: Duration,
    /// Months of messages kept attached; older monthly partitions are detached.
    #[arg(long, env = "STOMPBOX_RETENTION_MONTHS", default_value_t = 60)]
    pub retention_months: u32,
    /// Serve Prometheus metrics at `http://ADDR/metrics`.
    #[arg(long, env = "STOMPBOX_SINK_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// How often the counters and the lag window are logged.
    #[arg(long, env = "STOMPBOX_SINK_LOG_INTERVAL", default_value = "10s", value_parser = humantime::parse_duration)]
    pub log_interval: Duration,
}

impl Cli {
    pub fn kafka(&self) -> KafkaConfig {
        let mut kafka = KafkaConfig::new(&self.kafka_brokers);
        kafka.events_topic.clone_from(&self.events_topic);
        kafka.dead_letter_topic.clone_from(&self.dead_letter_topic);
        kafka.partitions = self.partitions;
        kafka.options.clone_from(&self.kafka_options);
        kafka
    }

    pub fn sink(&self) -> SinkConfig {
        SinkConfig {
            group_id: self.group_id.clone(),
            batch_max: self.batch_size.max(1),
            batch_linger: self.batch_time,
            connections: self.connections.max(1),
            session_timeout: self.session_timeout,
            ..SinkConfig::default()
        }
    }

    pub fn postgres(&self) -> Result<PostgresConfig, chat_store::StoreError> {
        let mut config: PostgresConfig = self.postgres_url.parse()?;
        config.retention_months = self.retention_months;
        // The partitions applied in parallel, plus one for partition maintenance.
        config.pool_size = config.pool_size.max(self.connections + 1);
        Ok(config)
    }
}

/// `KEY=VALUE` of `--kafka-option`, split at the first `=` (values may hold `=` and `,`).
fn kafka_option(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.to_owned()))
        }
        _ => Err(format!("{text:?} is not KEY=VALUE (a librdkafka property)")),
    }
}
