//! The broker's Kafka producer, replaceable: after a record timed out, librdkafka's idempotent
//! producer bumps its epoch on its own (KIP-360). A broker that does not support that answers
//! with "producer fenced" and the producer stalls for good — seen with tansu 0.6: every later
//! record waited forever. A new producer gets a new producer id from the broker and carries on.
//!
//! So after a timed-out or fenced delivery the producer is replaced; records still queued in
//! the old one are purged and their senders told "not stored" (they retry with the same
//! clientMessageId, and the sink keeps one copy whatever Kafka kept). Against Apache Kafka the
//! epoch bump works and this costs one reconnect per outage.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{Producer, PurgeConfig};

use crate::kafka::{EventProducer, KafkaConfig};

#[derive(Debug, Clone)]
pub(crate) struct Producers {
    current: Arc<RwLock<(u64, EventProducer)>>,
    config: Arc<KafkaConfig>,
}

impl Producers {
    pub(crate) fn new(config: KafkaConfig) -> Result<Self, KafkaError> {
        let producer = EventProducer::new(&config)?;
        Ok(Self {
            current: Arc::new(RwLock::new((0, producer))),
            config: Arc::new(config),
        })
    }

    /// The producer now, with its generation (to name it in [`Producers::replace_after`]).
    pub(crate) fn current(&self) -> (u64, EventProducer) {
        let guard = self.current.read().unwrap_or_else(|p| p.into_inner());
        (guard.0, guard.1.clone())
    }

    /// Replaces generation `generation` if `error` says it may be stuck, and it is still the
    /// current one (many records fail together in an outage; one replacement serves all).
    pub(crate) fn replace_after(&self, generation: u64, error: &KafkaError) {
        if !stalls_idempotence(error) {
            return;
        }
        let fresh = match EventProducer::new(&self.config) {
            Ok(fresh) => fresh,
            Err(e) => {
                tracing::error!(error = %e, "could not create a new Kafka producer");
                return;
            }
        };
        let old = {
            let mut guard = self.current.write().unwrap_or_else(|p| p.into_inner());
            if guard.0 != generation {
                return;
            }
            let old = std::mem::replace(&mut guard.1, fresh);
            guard.0 += 1;
            old
        };
        tracing::warn!(error = %error, generation, "replacing the Kafka producer after a failed delivery");
        // Destroying a librdkafka client blocks until its threads stop: not on a runtime thread.
        tokio::task::spawn_blocking(move || {
            old.inner().purge(PurgeConfig::default().queue().inflight());
            drop(old);
        });
    }
}

impl Producers {
    /// Waits until the current producer has handed over every queued record (acknowledged or
    /// failed) or `timeout` passed. librdkafka's flush blocks, so it runs on the blocking pool.
    pub(crate) async fn flush(&self, timeout: Duration) -> Result<(), KafkaError> {
        let (_, producer) = self.current();
        tokio::task::spawn_blocking(move || producer.inner().flush(timeout))
            .await
            .unwrap_or(Err(KafkaError::Canceled))
    }
}

fn stalls_idempotence(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::MessageTimedOut
                | RDKafkaErrorCode::RequestTimedOut
                | RDKafkaErrorCode::ProducerFenced
                | RDKafkaErrorCode::InvalidProducerEpoch
                | RDKafkaErrorCode::OutOfOrderSequenceNumber
                | RDKafkaErrorCode::UnknownProducerId
        )
    )
}
