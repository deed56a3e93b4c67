//! The broker's Kafka producer, replaceable: after a record timed out, librdkafka's idempotent
//! producer bumps its epoch on its own (KIP-360). A broker that does not support that answers
//! with "producer fenced" and the producer stalls for good — seen with tansu 0.6: every later
//! record waited forever. A new producer gets a new producer id from the broker and carries on.
//!
//! So after a timed-out or fenced delivery the producer is replaced; records still queued in
//! the old one are purged and their senders told "not stored" (they retry with the same
//! clientMessageId, and the sink keeps one copy whatever Kafka kept). Against Apache Kafka the
//! epoch bump works and this costs one reconnect per outage.
//!
//! A failed delivery is seen on the producer's polling thread (its delivery report), which
//! must not block nor destroy its own producer: it only names the failure to this module's
//! task, which does the replacing whether or not the record's sender still waits.

use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{Producer, PurgeConfig};
use tokio::sync::mpsc;

use super::in_flight::Held;
use crate::kafka::{EventProducer, KafkaConfig, OnFailure};

/// The store's producer: each record holds its slot and ticket until Kafka answers.
pub(crate) type StoreProducer = EventProducer<Held>;

/// Failures waiting for the replacing task; more are dropped (many records fail together in
/// an outage, and one replacement serves all of them).
const FAILURES_QUEUED: usize = 16;

#[derive(Debug, Clone)]
pub(crate) struct Producers {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    /// The producer now, with its generation.
    current: RwLock<(u64, StoreProducer)>,
    config: KafkaConfig,
    failures_tx: mpsc::Sender<(u64, KafkaError)>,
}

impl Producers {
    /// Creates the first producer and the task replacing it after failures (on the current
    /// runtime; it ends with the last `Producers`).
    pub(crate) fn new(config: KafkaConfig) -> Result<Self, KafkaError> {
        let (failures_tx, failures_rx) = mpsc::channel(FAILURES_QUEUED);
        let producer = created(&config, 0, &failures_tx)?;
        let shared = Arc::new(Shared {
            current: RwLock::new((0, producer)),
            config,
            failures_tx,
        });
        tokio::spawn(replace_on_failure(Arc::downgrade(&shared), failures_rx));
        Ok(Self { shared })
    }

    /// The producer now.
    pub(crate) fn current(&self) -> StoreProducer {
        self.shared.read().1.clone()
    }

    /// Calls `f` with the producer now, without cloning it.
    pub(crate) fn with_current<T>(&self, f: impl FnOnce(&StoreProducer) -> T) -> T {
        f(&self.shared.read().1)
    }

    /// Waits until the current producer has handed over every queued record (acknowledged or
    /// failed) or `timeout` passed. librdkafka's flush blocks, so it runs on the blocking pool.
    pub(crate) async fn flush(&self, timeout: Duration) -> Result<(), KafkaError> {
        let producer = self.current();
        tokio::task::spawn_blocking(move || producer.inner().flush(timeout))
            .await
            .unwrap_or(Err(KafkaError::Canceled))
    }
}

impl Shared {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, (u64, StoreProducer)> {
        self.current.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces generation `generation` if it is still the current one.
    fn replace(&self, generation: u64, error: &KafkaError) {
        if self.read().0 != generation {
            return;
        }
        let fresh = match created(&self.config, generation + 1, &self.failures_tx) {
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

/// A producer of generation `generation` whose failed deliveries that may stall it are named
/// to the replacing task.
fn created(
    config: &KafkaConfig,
    generation: u64,
    failures_tx: &mpsc::Sender<(u64, KafkaError)>,
) -> Result<StoreProducer, KafkaError> {
    let failures_tx = failures_tx.clone();
    let on_failure: OnFailure = Box::new(move |error| {
        if stalls_idempotence(error) {
            // Full: a replacement is already asked for.
            let _ = failures_tx.try_send((generation, error.clone()));
        }
    });
    EventProducer::with_hook(config, Some(on_failure))
}

async fn replace_on_failure(
    shared: Weak<Shared>,
    mut failures_rx: mpsc::Receiver<(u64, KafkaError)>,
) {
    while let Some((generation, error)) = failures_rx.recv().await {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        shared.replace(generation, &error);
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
