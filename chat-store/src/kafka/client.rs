//! The Kafka client side (feature `kafka`): the client settings every client shares, which
//! errors are transient, and the topics (created with a configured partition count when
//! missing). The producer of records is [`super::producer`].

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::kafka::KafkaConfig;

/// Bound on admin requests (topic creation, metadata) against a broker that is down.
pub(crate) const ADMIN_TIMEOUT: Duration = Duration::from_secs(10);

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
