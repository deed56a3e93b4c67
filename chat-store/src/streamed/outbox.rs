//! What hands records to Kafka and tracks them until Kafka answers: the current producer, the
//! bounded slots for messages awaiting their ack, this node's in-flight tickets (for the read
//! [`barrier`](super::barrier)), and the recently accepted client ids a refusal or a doubt
//! updates. Shared by the accept [`line`](super::line), which hands over every message, and
//! the store, which hands over DELIVERED/READ events.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use super::barrier::{InFlight, Ticket};
use super::producer::Producers;
use super::recent::RecentIds;
use crate::kafka;
use crate::record::Event;
use crate::{Appended, Durability, StoreError, StoredMessage};

/// The ack of one record, sent when Kafka answers.
pub(crate) type Ack = oneshot::Receiver<Result<(), StoreError>>;

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
        event: Event,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Result<Ack, StoreError> {
        let ticket: Ticket = self.in_flight.begin();
        let (generation, producer) = self.producers.current();
        let delivery = producer
            .enqueue(event, None)
            .map_err(|e| kafka_error("not accepted by the Kafka producer", &e))?;
        let producers = self.producers.clone();
        let (tx, rx) = oneshot::channel();
        tokio::spawn(async move {
            let result = delivery.await.map(|_| ()).map_err(|e| {
                producers.replace_after(generation, &e);
                kafka_error("not stored: Kafka refused it", &e)
            });
            drop((ticket, permit));
            let _ = tx.send(result);
        });
        Ok(rx)
    }

    /// Sends a message whose key `recent` holds for it: refused before Kafka saw it, the key
    /// is released; not acknowledged after, the message is in doubt (its retry re-sends it).
    pub(crate) fn send_message(&self, message: StoredMessage) -> Result<Durability, StoreError> {
        let sent = Arc::clone(&self.pending)
            .try_acquire_owned()
            .map_err(|_| {
                StoreError::Unavailable("too many messages waiting for Kafka; retry later".into())
            })
            .and_then(|permit| self.produce(Event::Message(message.clone()), Some(permit)));
        let rx = match sent {
            Ok(rx) => rx,
            Err(e) => {
                self.recent.release(&message);
                return Err(e);
            }
        };
        let recent = Arc::clone(&self.recent);
        Ok(Box::pin(async move {
            let result = durable(rx).await;
            if result.is_err() {
                recent.doubt(&message);
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
    ack.await
        .unwrap_or_else(|_| Err(StoreError::Unavailable("Kafka producer stopped".into())))
}

pub(crate) fn kafka_error(what: &str, e: &rdkafka::error::KafkaError) -> StoreError {
    let text = format!("{what}: {e}");
    if kafka::is_transient(e) {
        StoreError::Unavailable(text)
    } else {
        StoreError::Internal(text)
    }
}
