//! `sink_progress`: per partition of a Kafka topic, the offset below which every record is in
//! PostgreSQL or dead-lettered. Written by the sink inside the transaction that applies the
//! records (so it never claims rows that are not committed), read by the broker to wait until
//! the records it had acknowledged are persisted (a gap-free sync barrier).
//!
//! It only moves forward (`GREATEST`): a replayed batch, or an older sink finishing a batch of a
//! partition that a rebalance already gave to another sink, never moves it back.

use std::collections::HashMap;

use crate::PostgresStore;
use crate::StoreError;
use crate::postgres::error::{pool_error, store_error};

/// Done up to (excluding) `next_offset` in `partition` of `topic`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub next_offset: i64,
}

/// Moves each position forward (never back), in the caller's transaction (the sink's apply).
#[cfg(feature = "kafka")]
pub(crate) async fn advance(
    client: &impl tokio_postgres::GenericClient,
    positions: &[Position<'_>],
) -> Result<(), StoreError> {
    if positions.is_empty() {
        return Ok(());
    }
    let topics: Vec<&str> = positions.iter().map(|p| p.topic).collect();
    let partitions: Vec<i32> = positions.iter().map(|p| p.partition).collect();
    let offsets: Vec<i64> = positions.iter().map(|p| p.next_offset).collect();
    client
        .execute(
            "INSERT INTO sink_progress (topic, partition, next_offset, updated_at) \
             SELECT t, p, o, now() FROM unnest($1::text[], $2::int[], $3::bigint[]) AS u(t, p, o) \
             ON CONFLICT (topic, partition) DO UPDATE SET \
               next_offset = GREATEST(sink_progress.next_offset, excluded.next_offset), \
               updated_at = excluded.updated_at",
            &[&topics, &partitions, &offsets],
        )
        .await
        .map_err(store_error)?;
    Ok(())
}

impl PostgresStore {
    /// Partition → next offset of `topic`: every record of that partition with a smaller
    /// offset is in PostgreSQL (or was dead-lettered). A partition the sink has not applied
    /// anything of yet is absent (nothing below any offset is known to be done).
    pub async fn sink_progress(&self, topic: &str) -> Result<HashMap<i32, i64>, StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        let rows = client
            .query(
                "SELECT partition, next_offset FROM sink_progress WHERE topic = $1",
                &[&topic],
            )
            .await
            .map_err(store_error)?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }
}
