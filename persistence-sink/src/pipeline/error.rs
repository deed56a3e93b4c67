//! Why the sink stopped: Kafka or PostgreSQL failed beyond retrying.

use chat_store::StoreError;
use rdkafka::error::KafkaError;

/// What ends the sink's run.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error("postgres: {0}")]
    Store(#[from] StoreError),
}
