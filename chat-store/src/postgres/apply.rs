//! The sink's database half: applies a batch of [`Event`]s to PostgreSQL in one transaction,
//! idempotently, so a batch replayed after a crash (offsets are committed only after this
//! commits) changes nothing the first run did not.
//!
//! - Messages: a binary `COPY` (the fast path, `postgres/message_copy.rs`) that a replayed
//!   record makes fail, then one multi-row `INSERT … SELECT FROM unnest(…) ON CONFLICT DO
//!   NOTHING` — a replay conflicts on `(message_id, created_at)` and is skipped. Small runs go
//!   straight to the insert.
//! - DELIVERED: insert-if-absent receipt rows, never below the READ watermark.
//! - READ: the watermark moves only forward; older or repeated marks are no-ops.
//!
//! - Progress: [`apply_batch_at`] also moves `sink_progress` of the batch's partitions in the
//!   same transaction, so "offset < next_offset ⇒ in PostgreSQL" holds at every commit.
//!
//! The Kafka half (consumer group, batching, offset commits, dead letters) is the sink's
//! `pipeline` (persistence-sink).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

use crate::postgres::progress::{self, Position};
use crate::postgres::{error, message_copy, mutation, partition, row};
use crate::record::Event;
use crate::{StoreError, StoredMessage};

/// What one batch changed (replays count as skipped, not as errors).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    pub messages_inserted: u64,
    pub messages_skipped: u64,
    pub delivered: u64,
    pub read_marks: u64,
}

impl Applied {
    pub fn add(&mut self, more: &Applied) {
        self.messages_inserted += more.messages_inserted;
        self.messages_skipped += more.messages_skipped;
        self.delivered += more.delivered;
        self.read_marks += more.read_marks;
    }
}

/// Applies `events` in their order in one transaction. `Unavailable` is transient (retry the
/// same batch later, offsets uncommitted); `Invalid`/`NotFound`/`Internal` mean some record can
/// never apply, and the caller isolates it (one record per call) to dead-letter it.
pub async fn apply_batch(client: &mut Client, events: &[Event]) -> Result<Applied, StoreError> {
    let events: Vec<&Event> = events.iter().collect();
    apply_batch_at(client, &events, &[]).await
}

/// [`apply_batch`], and in the same transaction moves each of `done` forward: the caller
/// passes, per partition, the offset after the last record of `events` (and of any record of
/// the batch already dead-lettered). No events: only the progress moves (dead-lettered records).
pub async fn apply_batch_at(
    client: &mut Client,
    events: &[&Event],
    done: &[Position<'_>],
) -> Result<Applied, StoreError> {
    match apply_once(client, events, done).await {
        Err(e) if error::is_missing_partition(&e) => {
            let months: BTreeSet<u64> = events
                .iter()
                .filter_map(|e| match *e {
                    Event::Message(m) => Some(m.timestamp_ms),
                    _ => None,
                })
                .collect();
            for at in months {
                partition::ensure_month(client, row::time(at)).await?;
            }
            apply_once(client, events, done).await
        }
        other => other,
    }
}

async fn apply_once(
    client: &mut Client,
    events: &[&Event],
    done: &[Position<'_>],
) -> Result<Applied, StoreError> {
    let tx = client.transaction().await.map_err(error::store_error)?;
    let mut applied = Applied::default();
    // Consecutive messages go in one statement; a status flushes them first so it sees them.
    let mut pending: Vec<&StoredMessage> = Vec::new();
    for &event in events {
        match event {
            Event::Message(m) => pending.push(m),
            Event::Delivered {
                user_id,
                message_ids,
                at_ms,
                ..
            } => {
                insert_messages(&tx, &mut pending, &mut applied).await?;
                let changes = mutation::mark_delivered(&tx, user_id, message_ids, *at_ms).await?;
                applied.delivered += changes.len() as u64;
            }
            Event::Read {
                conversation_id,
                user_id,
                up_to,
                at_ms,
            } => {
                insert_messages(&tx, &mut pending, &mut applied).await?;
                if mutation::mark_read(&tx, user_id, conversation_id, *up_to, *at_ms)
                    .await?
                    .is_some()
                {
                    applied.read_marks += 1;
                }
            }
            // Nothing to apply: its offset counts as done like any other record's.
            Event::Mark { .. } => {}
        }
    }
    insert_messages(&tx, &mut pending, &mut applied).await?;
    progress::advance(&tx, done).await?;
    tx.commit().await.map_err(error::store_error)?;
    Ok(applied)
}

async fn insert_messages(
    tx: &tokio_postgres::Transaction<'_>,
    pending: &mut Vec<&StoredMessage>,
    applied: &mut Applied,
) -> Result<(), StoreError> {
    if pending.is_empty() {
        return Ok(());
    }
    check_conversations(tx, pending).await?;
    let before = pending.len();
    drop_client_id_retries(tx, pending).await?;
    drop_stored(tx, pending).await?;
    applied.messages_skipped += (before - pending.len()) as u64;
    if pending.is_empty() {
        return Ok(());
    }
    let seqs = place(tx, pending).await?;
    let ids = pending
        .iter()
        .map(|m| row::sql_int(m.message_id, "message id"))
        .collect::<Result<Vec<i64>, _>>()?;
    let inserted = if pending.len() >= message_copy::COPY_MIN_ROWS {
        copy_or_insert(tx, &ids, &seqs, pending).await?
    } else {
        insert_skipping_replays(tx, &ids, &seqs, pending).await?
    };
    applied.messages_inserted += inserted;
    applied.messages_skipped += pending.len() as u64 - inserted;
    pending.clear();
    Ok(())
}

/// Drops messages already stored (a replayed record): they keep the position they have, and
/// the rest get the next ones with no gap.
async fn drop_stored(
    tx: &tokio_postgres::Transaction<'_>,
    pending: &mut Vec<&StoredMessage>,
) -> Result<(), StoreError> {
    let ids = pending
        .iter()
        .map(|m| row::sql_int(m.message_id, "message id"))
        .collect::<Result<Vec<i64>, _>>()?;
    let stored: std::collections::HashSet<i64> = tx
        .query(
            "SELECT message_id FROM messages WHERE message_id = ANY($1)",
            &[&ids],
        )
        .await
        .map_err(error::store_error)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if !stored.is_empty() {
        pending.retain(|m| !stored.contains(&(m.message_id as i64)));
    }
    Ok(())
}

/// The positions of `pending` in their conversations, in their order — the records' order in
/// their Kafka partition, which holds all of a conversation's records — taken by moving each
/// conversation's `last_seq` once, in the transaction that inserts the rows: a reader never
/// sees a row without its position, and positions become visible in order. (Two sink
/// instances applying the same batch during a rebalance both take positions; the loser's
/// insert skips its rows, leaving a gap. Positions stay increasing; clients never wait on one.)
async fn place(
    tx: &tokio_postgres::Transaction<'_>,
    pending: &[&StoredMessage],
) -> Result<Vec<i64>, StoreError> {
    let mut added: BTreeMap<&str, i64> = BTreeMap::new();
    for m in pending {
        *added.entry(m.conversation_id.as_str()).or_default() += 1;
    }
    let conversations: Vec<&str> = added.keys().copied().collect();
    let counts: Vec<i64> = added.values().copied().collect();
    let mut next: HashMap<String, i64> = tx
        .query(
            "UPDATE conversations c SET last_seq = c.last_seq + n.added \
             FROM unnest($1::text[], $2::bigint[]) AS n(id, added) WHERE c.id = n.id \
             RETURNING c.id, c.last_seq - n.added",
            &[&conversations, &counts],
        )
        .await
        .map_err(error::store_error)?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    pending
        .iter()
        .map(|m| {
            let at = next.get_mut(m.conversation_id.as_str()).ok_or_else(|| {
                StoreError::Invalid(format!(
                    "a message of conversation {:?}, which does not exist",
                    m.conversation_id
                ))
            })?;
            *at += 1;
            Ok(*at)
        })
        .collect()
}

/// The COPY fast path; on a unique violation (some record is a replay) the same rows again
/// with the conflict-tolerant insert, after rolling the COPY back to its savepoint.
async fn copy_or_insert(
    tx: &tokio_postgres::Transaction<'_>,
    ids: &[i64],
    seqs: &[i64],
    pending: &[&StoredMessage],
) -> Result<u64, StoreError> {
    tx.batch_execute("SAVEPOINT message_copy")
        .await
        .map_err(error::store_error)?;
    match message_copy::copy(tx, ids, seqs, pending).await {
        Ok(copied) => {
            tx.batch_execute("RELEASE SAVEPOINT message_copy")
                .await
                .map_err(error::store_error)?;
            Ok(copied)
        }
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
            tx.batch_execute("ROLLBACK TO SAVEPOINT message_copy")
                .await
                .map_err(error::store_error)?;
            insert_skipping_replays(tx, ids, seqs, pending).await
        }
        Err(e) => Err(error::store_error(e)),
    }
}

/// One multi-row `INSERT … ON CONFLICT DO NOTHING`: rows already stored are skipped.
async fn insert_skipping_replays(
    tx: &tokio_postgres::Transaction<'_>,
    ids: &[i64],
    seqs: &[i64],
    pending: &[&StoredMessage],
) -> Result<u64, StoreError> {
    let times: Vec<_> = pending.iter().map(|m| row::time(m.timestamp_ms)).collect();
    let conversations: Vec<&str> = pending.iter().map(|m| m.conversation_id.as_str()).collect();
    let senders: Vec<&str> = pending.iter().map(|m| m.sender_id.as_str()).collect();
    let contents: Vec<&str> = pending.iter().map(|m| m.content.as_str()).collect();
    let types: Vec<&str> = pending.iter().map(|m| m.content_type.as_str()).collect();
    let client_ids: Vec<Option<&str>> = pending
        .iter()
        .map(|m| m.client_message_id.as_deref())
        .collect();
    tx.execute(
        "INSERT INTO messages (message_id, conversation_id, sender_id, content, content_type, \
         client_message_id, created_at, seq) \
         SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], \
                              $6::text[], $7::timestamptz[], $8::bigint[]) \
         ON CONFLICT DO NOTHING",
        &[
            &ids,
            &conversations,
            &senders,
            &contents,
            &types,
            &client_ids,
            &times,
            &seqs,
        ],
    )
    .await
    .map_err(error::store_error)
}

/// Drops messages whose `(sender, client_message_id)` is already taken by another message id
/// (in the table or earlier in `pending`): the broker answers a retry with the original, but a
/// message Kafka stored after the broker had given up on it (and told the sender "not
/// stored") comes back here next to its retry. The first one stored wins; the retry is
/// skipped, so the idempotency key holds in PostgreSQL whatever happened on the way.
async fn drop_client_id_retries(
    tx: &tokio_postgres::Transaction<'_>,
    pending: &mut Vec<&StoredMessage>,
) -> Result<(), StoreError> {
    let mut seen = std::collections::HashSet::new();
    pending.retain(|m| match &m.client_message_id {
        Some(client_id) => seen.insert((m.sender_id.as_str(), client_id.as_str())),
        None => true,
    });
    let keyed: Vec<&&StoredMessage> = pending
        .iter()
        .filter(|m| m.client_message_id.is_some())
        .collect();
    if keyed.is_empty() {
        return Ok(());
    }
    let senders: Vec<&str> = keyed.iter().map(|m| m.sender_id.as_str()).collect();
    let client_ids: Vec<&str> = keyed
        .iter()
        .filter_map(|m| m.client_message_id.as_deref())
        .collect();
    let ids = keyed
        .iter()
        .map(|m| row::sql_int(m.message_id, "message id"))
        .collect::<Result<Vec<i64>, _>>()?;
    let taken = tx
        .query(
            "SELECT k.sender_id, k.client_message_id \
             FROM unnest($1::text[], $2::text[], $3::bigint[]) AS k(sender_id, client_message_id, id) \
             WHERE EXISTS (SELECT 1 FROM messages m WHERE m.sender_id = k.sender_id \
                           AND m.client_message_id = k.client_message_id AND m.message_id <> k.id)",
            &[&senders, &client_ids, &ids],
        )
        .await
        .map_err(error::store_error)?;
    if taken.is_empty() {
        return Ok(());
    }
    let taken: std::collections::HashSet<(String, String)> =
        taken.iter().map(|r| (r.get(0), r.get(1))).collect();
    pending.retain(|m| match &m.client_message_id {
        Some(client_id) => !taken.contains(&(m.sender_id.clone(), client_id.clone())),
        None => true,
    });
    Ok(())
}

/// Refuses (permanently: the record is dead-lettered) a message of a conversation that does not
/// exist — one query per batch for its distinct conversations, where a foreign key would lock
/// the conversation row once per message.
async fn check_conversations(
    tx: &tokio_postgres::Transaction<'_>,
    pending: &[&StoredMessage],
) -> Result<(), StoreError> {
    let wanted: std::collections::BTreeSet<&str> =
        pending.iter().map(|m| m.conversation_id.as_str()).collect();
    let wanted: Vec<&str> = wanted.into_iter().collect();
    let known: std::collections::HashSet<String> = tx
        .query(
            "SELECT id FROM conversations WHERE id = ANY($1)",
            &[&wanted],
        )
        .await
        .map_err(error::store_error)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    match wanted.iter().find(|id| !known.contains(**id)) {
        Some(missing) => Err(StoreError::Invalid(format!(
            "a message of conversation {missing:?}, which does not exist"
        ))),
        None => Ok(()),
    }
}
