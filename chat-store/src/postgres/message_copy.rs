//! The sink's fast path for message rows: binary `COPY` straight into `messages`. COPY skips
//! the per-statement executor work of `INSERT … ON CONFLICT` and batches heap inserts, but it
//! cannot skip rows already there: a replayed record makes it fail with a unique violation
//! (23505), and the caller applies that batch again with the conflict-tolerant insert.
//! The caller drops replayed records before it copies (`apply::drop_applied`), so only a replay
//! racing this batch (two sinks during a rebalance) gets here: the fast path is the common one.
//!
//! Public for the sink bench's `copy-ceiling`, which copies the same rows with nothing else
//! around them: PostgreSQL's own ceiling for the sink.

use deadpool_postgres::Transaction;
use futures_util::pin_mut;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;

use crate::StoredMessage;
use crate::postgres::row;

/// Below this many rows the COPY's extra round trip (the COPY, then its data) costs more than it
/// saves; measured with the sink bench (docs/persistence.md, with a savepoint then).
pub(crate) const COPY_MIN_ROWS: usize = 64;

/// Copies `messages` (with their ids, already checked to fit a BIGINT, and positions) into `messages`; the
/// row count, or the error (a unique violation for a replay).
pub async fn copy(
    tx: &Transaction<'_>,
    ids: &[i64],
    seqs: &[i64],
    messages: &[&StoredMessage],
) -> Result<u64, tokio_postgres::Error> {
    // Prepared once per connection: the COPY then starts in one round trip, not two.
    let statement = tx
        .prepare_cached(
            "COPY messages (message_id, conversation_id, sender_id, content, content_type, \
             client_message_id, created_at, seq) FROM STDIN (FORMAT binary)",
        )
        .await?;
    let sink = tx.copy_in(&statement).await?;
    let writer = BinaryCopyInWriter::new(
        sink,
        &[
            Type::INT8,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TIMESTAMPTZ,
            Type::INT8,
        ],
    );
    pin_mut!(writer);
    for ((id, seq), m) in ids.iter().zip(seqs).zip(messages) {
        let at = row::time(m.timestamp_ms);
        writer
            .as_mut()
            .write(&[
                id,
                &m.conversation_id,
                &m.sender_id,
                &m.content,
                &m.content_type,
                &m.client_message_id,
                &at,
                seq,
            ])
            .await?;
    }
    writer.finish().await
}
