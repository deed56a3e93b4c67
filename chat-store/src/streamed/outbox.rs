//! What hands records to Kafka and tracks them until Kafka answers: the current producer, the
//! bounded slots for messages awaiting their ack, this node's in-flight tickets (for the read
//! [`barrier`](super::barrier)), and the recently accepted client ids a refusal or a doubt
//! updates. Shared by the accept [`line`](super::line), which hands over every message, and
//! the store, which hands over DELIVERED/READ events.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::in_flight::{Held, InFlight};
use super::producer::Producers;
use super::recent::RecentIds;
use crate::kafka::{self, Ack};
use crate::record::Event;
use crate::{Appended, Durability, StoreError, StoredMessage};

#[derive(Debug, Clone)]
pub(crate) struct Outbox {
    pub(crate) producers: Producers,
    pub(crate) recent: Arc<RecentIds>,
    in_flight: Arc<InFlight>,
    pending: Arc<Semaphore>,
}

impl Outbox {
    pub(crate) fn new(
        producers: Producers,
        recent: Arc<RecentIds>,
        in_flight: Arc<InFlight>,
        max_pending: usize,
    ) -> Self {
        Self {
            producers,
            recent,
            in_flight,
            pending: Arc::new(Semaphore::new(max_pending)),
        }
    }

    /// Whether every slot for messages awaiting Kafka's ack is taken (sends are refused).
    pub(crate) fn full(&self) -> bool {
        self.pending.available_permits() == 0
    }

    /// Hands `event` to Kafka now (records handed over one after another keep that order
    /// within a partition); the returned ack resolves when Kafka answers. The permit and
    /// ticket are released then, whether or not anyone awaits the ack.
    pub(crate) fn produce(
        &self,
        event: &Event,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Result<Ack, StoreError> {
        let held = Held {
            _ticket: Some(self.in_flight.begin()),
            _permit: permit,
        };
        self.producers
            .with_current(|producer| producer.enqueue(event, None, held))
            .map_err(|e| kafka_error("not accepted by the Kafka producer", &e))
    }

    /// Sends a message whose key `recent` holds for it: refused before Kafka saw it, the key
    /// is released; not acknowledged after, the message is in doubt (its retry re-sends it).
    pub(crate) fn send_message(&self, message: StoredMessage) -> Result<Durability, StoreError> {
        let event = Event::Message(message);
        let sent = Arc::clone(&self.pending)
            .try_acquire_owned()
            .map_err(|_| {
                StoreError::Unavailable("too many messages waiting for Kafka; retry later".into())
            })
            .and_then(|permit| self.produce(&event, Some(permit)));
        // The event is kept (not a clone of the message) for what a refusal updates.
        let ack = match (sent, &event) {
            (Ok(ack), _) => ack,
            (Err(e), Event::Message(message)) => {
                self.recent.release(message);
                return Err(e);
            }
            (Err(e), _) => return Err(e),
        };
        let recent = Arc::clone(&self.recent);
        Ok(Box::pin(async move {
            let result = durable(ack).await;
            if let (Err(_), Event::Message(message)) = (&result, &event) {
                recent.doubt(message);
            }
            result
        }))
    }

    /// Sends `original` again under its id (Kafka may hold it, or may not yet: the sink keeps
    /// one row per id) and answers the retry with it.
    pub(crate) fn resend(
        &self,
        original: StoredMessage,
    ) -> Result<(Appended, Option<Durability>), StoreError> {
        let durability = self.send_message(original.clone())?;
        Ok((Appended::Duplicate { original }, Some(durability)))
    }
}

/// Waits for `ack`; a producer gone before answering counts as not stored.
pub(crate) async fn durable(ack: Ack) -> Result<(), StoreError> {
    match ack.await {
        Ok(_) => Ok(()),
        Err(rdkafka::error::KafkaError::Canceled) => {
            Err(StoreError::Unavailable("Kafka producer stopped".into()))
        }
        Err(e) => Err(kafka_error("not stored: Kafka refused it", &e)),
    }
}

pub(crate) fn kafka_error(what: &str, e: &rdkafka::error::KafkaError) -> StoreError {
    let text = format!("{what}: {e}");
    if kafka::is_transient(e) {
        StoreError::Unavailable(text)
    } else {
        StoreError::Internal(text)
    }
}
