//! The sink's database half: applies a batch of [`Event`]s to PostgreSQL in one transaction,
//! idempotently, so a batch replayed after a crash (offsets are committed only after this
//! commits) changes nothing the first run did not.
//!
//! - Messages: one query drops what is already applied (a replayed record, a retry of a stored
//!   clientMessageId), one `UPDATE … RETURNING` gives the rest their positions (and refuses a
//!   message of an unknown conversation), then a binary `COPY` (the fast path,
//!   `postgres/message_copy.rs`). A replay racing this batch (two sinks during a rebalance)
//!   makes the COPY fail; the whole batch is then applied again with one multi-row `INSERT …
//!   SELECT FROM unnest(…) ON CONFLICT DO NOTHING`, which skips rows already there. Small runs
//!   go straight to the insert.
//! - Round trips: every statement is prepared once per connection (`prepare_cached`), and no
//!   savepoint guards the COPY (the rare race retries the transaction instead). A batch of
//!   messages costs seven round trips whatever its size (BEGIN, `jit = off`, skip, place, COPY
//!   and its data, progress, COMMIT) where it cost sixteen (five statements parsed anew each time, a
//!   conversation check, a second replay check, a savepoint and its release): what a small batch
//!   — the sink keeping up at a steady rate — pays per row.
//! - DELIVERED: insert-if-absent receipt rows, never below the READ watermark.
//! - READ: the watermark moves only forward; older or repeated marks are no-ops.
//!
//! - Progress: [`apply_batch_at`] also moves `sink_progress` of the batch's partitions in the
//!   same transaction, so "offset < next_offset ⇒ in PostgreSQL" holds at every commit.
//!
//! The Kafka half (consumer group, batching, offset commits, dead letters) is the sink's
//! `pipeline` (persistence-sink).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use deadpool_postgres::{Client, Transaction};

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
    let mut copy = Copy::Try;
    let mut partitions_made = false;
    loop {
        match apply_once(client, events, done, copy).await {
            Err(e) if error::is_missing_partition(&e) && !partitions_made => {
                partitions_made = true;
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
            }
            // A replay raced this batch (another sink applying it during a rebalance) and
            // made the COPY fail: everything of this attempt is rolled back, positions
            // included; again without COPY, the rows that are there now are skipped.
            Err(e) if copy == Copy::Try && error::is_unique_violation(&e) => copy = Copy::Skip,
            other => return other,
        }
    }
}

/// Whether message rows may go in by COPY (which fails on a replayed row) or only by the
/// conflict-tolerant insert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Copy {
    Try,
    Skip,
}

async fn apply_once(
    client: &mut Client,
    events: &[&Event],
    done: &[Position<'_>],
    copy: Copy,
) -> Result<Applied, StoreError> {
    let tx = client.transaction().await.map_err(error::store_error)?;
    // The replay probe's plan is costed on the statistics of a growing table (a month's new
    // partition starts empty), and crossing `jit_above_cost` made PostgreSQL compile it on
    // every batch: 19-25 % of the probe's time in the sink bench (pg_stat_statements, 1.1-1.4 s
    // of JIT per 500k rows). Nothing this transaction runs is long enough to repay a JIT.
    tx.batch_execute("SET LOCAL jit = off")
        .await
        .map_err(error::store_error)?;
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
                insert_messages(&tx, &mut pending, copy, &mut applied).await?;
                let changes = mutation::mark_delivered(&tx, user_id, message_ids, *at_ms).await?;
                applied.delivered += changes.len() as u64;
            }
            Event::Read {
                conversation_id,
                user_id,
                up_to,
                at_ms,
            } => {
                insert_messages(&tx, &mut pending, copy, &mut applied).await?;
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
    insert_messages(&tx, &mut pending, copy, &mut applied).await?;
    progress::advance(&*tx, done).await?;
    tx.commit().await.map_err(error::store_error)?;
    Ok(applied)
}

async fn insert_messages(
    tx: &Transaction<'_>,
    pending: &mut Vec<&StoredMessage>,
    copy: Copy,
    applied: &mut Applied,
) -> Result<(), StoreError> {
    if pending.is_empty() {
        return Ok(());
    }
    let before = pending.len();
    drop_applied(tx, pending).await?;
    applied.messages_skipped += (before - pending.len()) as u64;
    if pending.is_empty() {
        return Ok(());
    }
    let seqs = place(tx, pending).await?;
    let ids = pending
        .iter()
        .map(|m| row::sql_int(m.message_id, "message id"))
        .collect::<Result<Vec<i64>, _>>()?;
    let inserted = if copy == Copy::Try && pending.len() >= message_copy::COPY_MIN_ROWS {
        message_copy::copy(tx, &ids, &seqs, pending)
            .await
            .map_err(error::store_error)?
    } else {
        insert_skipping_replays(tx, &ids, &seqs, pending).await?
    };
    applied.messages_inserted += inserted;
    applied.messages_skipped += pending.len() as u64 - inserted;
    pending.clear();
    Ok(())
}

/// Drops from `pending` what is already applied, in one query:
/// - a second message with the same `(sender, client_message_id)` in `pending` (the first wins);
/// - a message whose `(sender, client_message_id)` is in the table: either this very message
///   (a replayed record) or another id under the same key. The broker answers a retry with the
///   original, but a message Kafka stored after the broker had given up on it (and told the
///   sender "not stored") comes back here next to its retry: the first one stored wins, so the
///   idempotency key holds in PostgreSQL whatever happened on the way;
/// - a message without a client id whose `(id, time)` is in the table (a replayed record).
///
/// A replay keeps the position it has, and the rest get the next ones with no gap.
///
/// Which monthly partitions each probe reads (one index descent per partition per row is the
/// probe's cost):
/// - without a client id, only the message's own month: a replay is the same record, so the
///   same `(message_id, created_at)` (the primary key), pruned to one partition at run time
///   (the probe by `message_id` alone read every partition's index: 60 for five years);
/// - with one, every month. Not the later ones would be enough (the key's first holder was
///   accepted before its retry, so it is not timestamped later but by the nodes' clock skew),
///   but that prunes only the empty months made ahead, and a bound on `created_at` takes the
///   probe off its index-only scan (`created_at` is not in the client-id index): measured, no
///   gain (docs/benchmarks.md, 2026-12-08). Not the older ones: a retry is given a new id only
///   when the broker found the original neither in its recent keys (or the cluster's claims)
///   nor in PostgreSQL — when the sink was behind — so the original can be as old as the sink's
///   lag allows (docs/persistence.md, "Idempotency end to end").
async fn drop_applied(
    tx: &Transaction<'_>,
    pending: &mut Vec<&StoredMessage>,
) -> Result<(), StoreError> {
    let mut seen = HashSet::new();
    pending.retain(|m| match &m.client_message_id {
        Some(client_id) => seen.insert((m.sender_id.as_str(), client_id.as_str())),
        None => true,
    });
    let ids = pending
        .iter()
        .map(|m| row::sql_int(m.message_id, "message id"))
        .collect::<Result<Vec<i64>, _>>()?;
    let times: Vec<_> = pending.iter().map(|m| row::time(m.timestamp_ms)).collect();
    let (senders, client_ids) = senders_and_client_ids(pending);
    let statement = tx
        .prepare_cached(
            "SELECT k.i FROM unnest($1::bigint[], $2::text[], $3::text[], $4::timestamptz[]) \
               WITH ORDINALITY AS k(id, sender_id, client_message_id, at, i) \
             WHERE CASE WHEN k.client_message_id IS NULL \
               THEN EXISTS (SELECT 1 FROM messages m \
                            WHERE m.message_id = k.id AND m.created_at = k.at) \
               ELSE EXISTS (SELECT 1 FROM messages m WHERE m.sender_id = k.sender_id \
                            AND m.client_message_id = k.client_message_id) END",
        )
        .await
        .map_err(error::store_error)?;
    let applied: HashSet<usize> = tx
        .query(&statement, &[&ids, &senders, &client_ids, &times])
        .await
        .map_err(error::store_error)?
        .iter()
        .filter_map(|r| usize::try_from(r.get::<_, i64>(0) - 1).ok())
        .collect();
    if !applied.is_empty() {
        let mut index = 0;
        pending.retain(|_| {
            index += 1;
            !applied.contains(&(index - 1))
        });
    }
    Ok(())
}

/// The positions of `pending` in their conversations, in their order — the records' order in
/// their Kafka partition, which holds all of a conversation's records — taken by moving each
/// conversation's `last_seq` once, in the transaction that inserts the rows: a reader never
/// sees a row without its position, and positions become visible in order. (Two sink
/// instances applying the same batch during a rebalance both take positions; the loser's
/// COPY fails and its batch is applied again, skipping the winner's rows, but a small batch's
/// insert skips them at once, leaving a gap. Positions stay increasing; clients never wait on
/// one.)
///
/// A message of a conversation that does not exist is refused (permanently: the record is
/// dead-lettered): the update returns no row for it. That is the batch's one check of its
/// conversations, where a foreign key would lock the conversation row once per message.
async fn place(tx: &Transaction<'_>, pending: &[&StoredMessage]) -> Result<Vec<i64>, StoreError> {
    let mut added: BTreeMap<&str, i64> = BTreeMap::new();
    for m in pending {
        *added.entry(m.conversation_id.as_str()).or_default() += 1;
    }
    let conversations: Vec<&str> = added.keys().copied().collect();
    let counts: Vec<i64> = added.values().copied().collect();
    let statement = tx
        .prepare_cached(
            "UPDATE conversations c SET last_seq = c.last_seq + n.added \
             FROM unnest($1::text[], $2::bigint[]) AS n(id, added) WHERE c.id = n.id \
             RETURNING c.id, c.last_seq - n.added",
        )
        .await
        .map_err(error::store_error)?;
    let mut next: HashMap<String, i64> = tx
        .query(&statement, &[&conversations, &counts])
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

/// One multi-row `INSERT … ON CONFLICT DO NOTHING`: rows already stored are skipped.
async fn insert_skipping_replays(
    tx: &Transaction<'_>,
    ids: &[i64],
    seqs: &[i64],
    pending: &[&StoredMessage],
) -> Result<u64, StoreError> {
    let times: Vec<_> = pending.iter().map(|m| row::time(m.timestamp_ms)).collect();
    let conversations: Vec<&str> = pending.iter().map(|m| m.conversation_id.as_str()).collect();
    let (senders, client_ids) = senders_and_client_ids(pending);
    let contents: Vec<&str> = pending.iter().map(|m| m.content.as_str()).collect();
    let types: Vec<&str> = pending.iter().map(|m| m.content_type.as_str()).collect();
    let statement = tx
        .prepare_cached(
            "INSERT INTO messages (message_id, conversation_id, sender_id, content, content_type, \
             client_message_id, created_at, seq) \
             SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], \
                                  $6::text[], $7::timestamptz[], $8::bigint[]) \
             ON CONFLICT DO NOTHING",
        )
        .await
        .map_err(error::store_error)?;
    tx.execute(
        &statement,
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

/// The senders and client ids of `pending`, in order, as query arrays.
fn senders_and_client_ids<'a>(
    pending: &[&'a StoredMessage],
) -> (Vec<&'a str>, Vec<Option<&'a str>>) {
    pending
        .iter()
        .map(|m| (m.sender_id.as_str(), m.client_message_id.as_deref()))
        .unzip()
}
