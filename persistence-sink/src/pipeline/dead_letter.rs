//! The dead-letter topic: records the sink can never apply (malformed, a newer version, refused
//! by the schema) go there with the reason in a header, so their partition keeps moving. A
//! send that fails transiently (Kafka briefly unavailable) is retried with the sink's capped
//! backoff: the record's offset is committed only after the dead-letter topic has it.

use std::time::Duration;

use chat_store::kafka::{self, KafkaConfig};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio_util::sync::CancellationToken;

use crate::pipeline::backoff::Backoff;
use crate::pipeline::consumed::Consumed;

/// The header carrying why the record was refused.
pub const REASON_HEADER: &str = "stompbox-error";

pub(crate) struct DeadLetters {
    producer: FutureProducer,
    topic: String,
    timeout: Duration,
    max_backoff: Duration,
}

impl DeadLetters {
    pub fn new(kafka: &KafkaConfig, max_backoff: Duration) -> Result<Self, KafkaError> {
        let producer = kafka
            .client_config()
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .create()?;
        Ok(DeadLetters {
            producer,
            topic: kafka.dead_letter_topic.clone(),
            timeout: kafka.delivery_timeout,
            max_backoff,
        })
    }

    /// `Ok(true)` once Kafka acknowledged it; `Ok(false)` when shut down while retrying;
    /// `Err` on a permanent Kafka error. `retries` counts the transient failures.
    pub async fn send(
        &self,
        consumed: &Consumed,
        why: &str,
        retries: &mut u64,
        shutdown: &CancellationToken,
    ) -> Result<bool, KafkaError> {
        tracing::warn!(partition = consumed.partition, offset = consumed.offset, reason = %why, "dead-lettering record");
        let mut backoff = Backoff::new(self.max_backoff);
        loop {
            let headers = OwnedHeaders::new().insert(Header {
                key: REASON_HEADER,
                value: Some(why),
            });
            let mut record = FutureRecord::to(&self.topic)
                .payload(&consumed.payload)
                .headers(headers);
            if let Some(key) = &consumed.key {
                record = record.key(key);
            }
            match self.producer.send(record, self.timeout).await {
                Ok(_) => return Ok(true),
                Err((e, _)) if kafka::is_transient(&e) => {
                    *retries += 1;
                    tracing::warn!(error = %e, "dead-letter send failed; retrying");
                    if !backoff.wait(shutdown).await {
                        return Ok(false);
                    }
                }
                Err((e, _)) => return Err(e),
            }
        }
    }
}
