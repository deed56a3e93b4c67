//! Idempotency keys checked against PostgreSQL in batches: a send whose `(sender,
//! clientMessageId)` this node does not remember asks the database (the original may be from
//! before a restart, or from another node). One lookup per send would put a query on every
//! send's path (measured: ~2 ms of planning each on a loaded 2-core machine, capping the
//! broker near 1,600 msgs/s); the task answers every key that queued while earlier queries
//! ran, so the database sees a query per batch, not per message.
//!
//! Up to [`MAX_CONCURRENT`] batches are out at once, each on its own pooled connection: with
//! one at a time, every send waited for the whole previous query and then its own, and a
//! batch's round trip (under load, tens of ms) capped the node's send rate. Answers still
//! go out in batch order, which is the order the sends asked in: the streamed store places
//! a conversation's messages in the order `accept` hands them to Kafka, so a later batch
//! answered first would put a conversation's later message before an earlier one.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::stream::{FuturesOrdered, StreamExt};
use tokio::sync::{mpsc, oneshot};

use crate::postgres::PostgresStore;
use crate::{StoreError, StoredMessage};

type Key = (String, String);
type Answer = oneshot::Sender<Result<Option<StoredMessage>, StoreError>>;

/// Keys a batch takes at most (a bounded query); more wait for the next batch.
const MAX_BATCH: usize = 1_024;
/// Lookups queued at most; past it a send fails at once (`Unavailable`).
const MAX_QUEUED: usize = 16_384;
/// Batches asked at once (each holds a pooled connection while it runs).
const MAX_CONCURRENT: usize = 4;

#[derive(Debug, Clone)]
pub(crate) struct Lookups {
    requests: mpsc::Sender<(Key, Answer)>,
}

impl Lookups {
    /// Starts the lookup task; it ends when every `Lookups` clone is dropped.
    pub(crate) fn start(store: Arc<PostgresStore>) -> Self {
        let (requests, rx) = mpsc::channel(MAX_QUEUED);
        tokio::spawn(serve(rx, store));
        Self { requests }
    }

    /// The message stored under `(sender, client_id)`, if any.
    pub(crate) async fn find(
        &self,
        sender: &str,
        client_id: &str,
    ) -> Result<Option<StoredMessage>, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.requests
            .try_send(((sender.to_owned(), client_id.to_owned()), tx))
            .map_err(|_| StoreError::Unavailable("too many idempotency lookups queued".into()))?;
        rx.await
            .unwrap_or_else(|_| Err(StoreError::Unavailable("store is shutting down".into())))
    }
}

/// Takes batches while fewer than [`MAX_CONCURRENT`] are out, and answers each batch once it
/// and every batch taken before it have their rows.
async fn serve(mut requests: mpsc::Receiver<(Key, Answer)>, store: Arc<PostgresStore>) {
    let mut out = FuturesOrdered::new();
    let mut open = true;
    while open || !out.is_empty() {
        tokio::select! {
            // Biased: answering frees a slot and a connection before a new batch takes one.
            biased;
            Some((batch, found)) = out.next() => answer(batch, found),
            taken = take(&mut requests), if open && out.len() < MAX_CONCURRENT => match taken {
                Some(batch) => {
                    let store = Arc::clone(&store);
                    out.push_back(async move {
                        let keys: Vec<Key> = batch.iter().map(|(key, _)| key.clone()).collect();
                        let found = store.find_by_client_ids(&keys).await;
                        (batch, found)
                    });
                }
                None => open = false,
            },
        }
    }
}

/// The keys queued now (at least one; `None` once every sender is gone).
async fn take(requests: &mut mpsc::Receiver<(Key, Answer)>) -> Option<Vec<(Key, Answer)>> {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    (requests.recv_many(&mut batch, MAX_BATCH).await > 0).then_some(batch)
}

/// Answers each key of `batch` from the rows found for it.
fn answer(batch: Vec<(Key, Answer)>, found: Result<Vec<StoredMessage>, StoreError>) {
    let found = match found {
        Ok(found) => found,
        Err(e) => {
            for (_, answer) in batch {
                let _ = answer.send(Err(e.clone()));
            }
            return;
        }
    };
    let mut by_key: HashMap<Key, StoredMessage> = HashMap::with_capacity(found.len());
    for message in found {
        if let Some(client_id) = message.client_message_id.clone() {
            let key = (message.sender_id.clone(), client_id);
            // Two rows under one key cannot be written by this code; if an old one exists,
            // the lowest id is the original.
            match by_key.get(&key) {
                Some(held) if held.message_id <= message.message_id => {}
                _ => {
                    by_key.insert(key, message);
                }
            }
        }
    }
    for (key, answer) in batch {
        let _ = answer.send(Ok(by_key.get(&key).cloned()));
    }
}
