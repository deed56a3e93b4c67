//! The accept line: every message `accept` hands to Kafka goes through one task, in the order
//! `accept` was called, so a conversation's records reach Kafka (and the sink's positions) in
//! the order the broker's sequencer delivered them live.
//!
//! Why a task, not the callers: a send whose `(sender, clientMessageId)` this node does not
//! remember asks PostgreSQL (the original may be from before a restart, or from another
//! node), and one query per send would put a query on every send's path (measured: ~2 ms of
//! planning each on a loaded 2-core machine, capping the broker near 1,600 msgs/s). So the
//! task answers every key that queued while the previous query ran with one query. Its
//! callers then wake in no guaranteed order; when each handed its own record to the producer
//! on waking, runs of a conversation's records reached Kafka reversed
//! (`persistence-sink/tests/streamed_order.rs`). Making each caller wait for the previous
//! one of its conversation kept the order but chained a wake-up per message (10k msgs/s
//! fell to 7k at load 2). Here the task itself hands a batch's records to the producer in
//! batch order, once the batch's query (and, in a cluster, its claims) answered, and tells
//! each caller its outcome: no wake-up sits between two records.
//!
//! Messages without a clientMessageId, and re-sends of messages in doubt, take the same line
//! (with nothing to look up): handed over at once, they would overtake earlier messages of
//! their conversation still waiting for their lookup.
//!
//! A refusal keeps the place of what was refused: a duplicate produces nothing, a send
//! refused (too many awaiting Kafka's ack, the producer's queue full, the lookup failed) is
//! not stored and its sender told so, and the records after it go on in order.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::future::join_all;
use tokio::sync::{mpsc, oneshot};

use super::outbox::Outbox;
use super::recent::Claim;
use crate::postgres::PostgresStore;
use crate::{Appended, ClaimHolder, Durability, SharedClaims, StoreError, StoredMessage};

type Key = (String, String);
/// What `accept` answers.
pub(crate) type Accepted = Result<(Appended, Option<Durability>), StoreError>;
type Answer = oneshot::Sender<Accepted>;

/// Sends a batch takes at most (a bounded query); more wait for the next batch.
const MAX_BATCH: usize = 1_024;
/// Sends queued at most; past it a send fails at once (`Unavailable`).
const MAX_QUEUED: usize = 16_384;

/// A send in the line; its key (if any) is claimed in `recent` for it already.
#[derive(Debug)]
pub(crate) enum Entry {
    /// A new message: checked against PostgreSQL (and the cluster's claims) if it has a
    /// client id, then sent.
    New(StoredMessage),
    /// A message in doubt, sent again under its id as the answer to its retry.
    Resend(StoredMessage),
}

impl Entry {
    /// Gives back what claiming the key took, for an entry that never reached the producer:
    /// a new message's key is released (a retry is a new message), a re-send's message is in
    /// doubt again (its retry re-sends it).
    fn unsent(self, outbox: &Outbox) {
        match self {
            Entry::New(message) => outbox.recent.release(&message),
            Entry::Resend(original) => outbox.recent.doubt(&original),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Line {
    entries: mpsc::Sender<(Entry, Answer)>,
}

impl Line {
    /// Starts the line's task; it ends when every `Line` clone is dropped.
    /// `shared`: the cluster's claims on client ids (`None` on a single node).
    pub(crate) fn start(
        postgres: Arc<PostgresStore>,
        outbox: Outbox,
        shared: Option<Arc<dyn SharedClaims>>,
    ) -> Self {
        let (entries, rx) = mpsc::channel(MAX_QUEUED);
        let worker = Worker {
            postgres,
            outbox,
            shared,
        };
        tokio::spawn(worker.serve(rx));
        Self { entries }
    }

    /// Queues `entry` now (its place in line is this call's) and waits for its outcome.
    pub(crate) async fn accept(&self, outbox: &Outbox, entry: Entry) -> Accepted {
        let (tx, rx) = oneshot::channel();
        if let Err(refused) = self.entries.try_send((entry, tx)) {
            refused.into_inner().0.unsent(outbox);
            return Err(StoreError::Unavailable(
                "too many sends queued for the store".into(),
            ));
        }
        rx.await
            .unwrap_or_else(|_| Err(StoreError::Unavailable("store is shutting down".into())))
    }
}

#[derive(Debug)]
struct Worker {
    postgres: Arc<PostgresStore>,
    outbox: Outbox,
    shared: Option<Arc<dyn SharedClaims>>,
}

/// What PostgreSQL holds under a batch's keys, or why it could not say.
type Found = Result<HashMap<Key, StoredMessage>, StoreError>;

impl Worker {
    async fn serve(self, mut entries: mpsc::Receiver<(Entry, Answer)>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while entries.recv_many(&mut batch, MAX_BATCH).await > 0 {
            let found = self.find(&batch).await;
            let holders = self.claims(&batch, &found).await;
            for ((entry, answer), holder) in batch.drain(..).zip(holders) {
                // A caller gone (its request dropped at shutdown) sends nothing.
                if answer.is_closed() {
                    entry.unsent(&self.outbox);
                    continue;
                }
                let _ = answer.send(self.send(entry, &found, holder));
            }
        }
    }

    /// One query for every new message of the batch that has a client id.
    async fn find(&self, batch: &[(Entry, Answer)]) -> Found {
        let keys: Vec<Key> = batch
            .iter()
            .filter_map(|(entry, _)| match entry {
                Entry::New(message) => key(message),
                Entry::Resend(_) => None,
            })
            .collect();
        let mut by_key: HashMap<Key, StoredMessage> = HashMap::new();
        if keys.is_empty() {
            return Ok(by_key);
        }
        for message in self.postgres.find_by_client_ids(&keys).await? {
            if let Some(key) = key(&message) {
                // Two rows under one key cannot be written by this code; if an old one
                // exists, the lowest id is the original.
                match by_key.get(&key) {
                    Some(held) if held.message_id <= message.message_id => {}
                    _ => {
                        by_key.insert(key, message);
                    }
                }
            }
        }
        Ok(by_key)
    }

    /// In a cluster, the claim another node holds on each new message's key that PostgreSQL
    /// does not know, all asked at once; one entry per entry of the batch. A claim that cannot
    /// be checked (Redis unreachable) counts as free: sends go on during the outage, and only
    /// a retry through another node within it may then be stored under a second id.
    async fn claims(&self, batch: &[(Entry, Answer)], found: &Found) -> Vec<Option<ClaimHolder>> {
        let (Some(shared), Ok(found)) = (&self.shared, found) else {
            return vec![None; batch.len()];
        };
        join_all(batch.iter().map(|(entry, _)| async move {
            let Entry::New(message) = entry else {
                return None;
            };
            let key = key(message)?;
            if found.contains_key(&key) {
                return None;
            }
            match shared.claim(message).await {
                Ok(holder) => holder.filter(|h| h.message_id != message.message_id),
                Err(e) => {
                    tracing::debug!(error = %e, "client id claim not checked");
                    None
                }
            }
        }))
        .await
    }

    /// Decides `entry` and hands its record (if any) to the producer.
    fn send(&self, entry: Entry, found: &Found, holder: Option<ClaimHolder>) -> Accepted {
        let message = match entry {
            Entry::Resend(original) => return self.outbox.resend(original),
            Entry::New(message) => message,
        };
        let recent = &self.outbox.recent;
        if let Some(key) = key(&message) {
            match found {
                Ok(found) => {
                    if let Some(original) = found.get(&key) {
                        recent.release(&message);
                        return Ok((
                            Appended::Duplicate {
                                original: original.clone(),
                            },
                            None,
                        ));
                    }
                }
                Err(e) => {
                    recent.release(&message);
                    return Err(e.clone());
                }
            }
            // Not in PostgreSQL, but another node may have sent it and the sink not stored
            // it yet: its id is the answer, and it goes to Kafka again under that id, since
            // whether the other node's attempt reached Kafka is unknown here.
            if let Some(holder) = holder {
                recent.release(&message);
                let original = holder.original_of(&message);
                return match recent.claim(&original) {
                    Claim::Claimed => self.outbox.resend(original),
                    Claim::Taken(held) => Ok((Appended::Duplicate { original: held }, None)),
                    Claim::Resend(held) => self.outbox.resend(held),
                };
            }
        }
        let durability = self.outbox.send_message(message)?;
        Ok((Appended::Stored { seq: None }, Some(durability)))
    }
}

fn key(message: &StoredMessage) -> Option<Key> {
    let client_id = message.client_message_id.clone()?;
    Some((message.sender_id.clone(), client_id))
}
