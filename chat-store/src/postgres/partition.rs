//! Monthly partitions of `messages`: created ahead of time, created on demand for a message
//! whose month has none (an old import, a skewed clock), and detached — not dropped — once
//! wholly older than the retention, so an operator archives or drops them deliberately.
//!
//! Partitions are named `messages_pYYYYMM` and cover `[first of month, first of next month)`
//! in UTC. Month arithmetic is done by PostgreSQL (`date_trunc`, intervals), so there is no
//! calendar code here.

use std::time::SystemTime;

use tokio_postgres::{Client, GenericClient};

use crate::StoreError;
use crate::postgres::error::store_error;
use crate::postgres::schema::SCHEMA_LOCK;

/// What [`maintain`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionReport {
    /// Partitions created by this run, oldest first (`messages_pYYYYMM`).
    pub created: Vec<String>,
    /// Partitions detached by this run, oldest first.
    pub detached: Vec<String>,
}

/// The name and bounds of the months from `from_months` to `to_months` relative to `at`'s
/// month (inclusive): `(messages_pYYYYMM, 'YYYY-MM-01', 'YYYY-MM-01' of the next month)`.
const MONTHS_SQL: &str = "SELECT to_char(m, '\"messages_p\"YYYYMM'), to_char(m, 'YYYY-MM-DD'), \
        to_char(m + interval '1 month', 'YYYY-MM-DD') \
     FROM generate_series( \
        date_trunc('month', $1::timestamptz AT TIME ZONE 'UTC') + make_interval(months => $2), \
        date_trunc('month', $1::timestamptz AT TIME ZONE 'UTC') + make_interval(months => $3), \
        interval '1 month') AS m";

async fn create_months(
    client: &impl GenericClient,
    at: SystemTime,
    from_months: i32,
    to_months: i32,
    created: &mut Vec<String>,
) -> Result<(), StoreError> {
    let months = client
        .query(MONTHS_SQL, &[&at, &from_months, &to_months])
        .await
        .map_err(store_error)?;
    for month in months {
        let (name, from, to): (String, String, String) = (month.get(0), month.get(1), month.get(2));
        let exists = client
            .query_opt(
                "SELECT 1 FROM pg_class WHERE oid = to_regclass($1)",
                &[&name],
            )
            .await
            .map_err(store_error)?
            .is_some();
        if exists {
            continue;
        }
        // Names and bounds come from to_char above (digits and dashes): no quoting issue.
        client
            .batch_execute(&format!(
                "CREATE TABLE {name} PARTITION OF messages \
                 FOR VALUES FROM ('{from} 00:00:00+00') TO ('{to} 00:00:00+00')"
            ))
            .await
            .map_err(store_error)?;
        created.push(name);
    }
    Ok(())
}

/// Creates the partitions of `now`'s month and the `ahead` next ones, and detaches every
/// partition whose month ended more than `retention_months` months before `now`'s month
/// began. Idempotent; serialized with migrations by an advisory lock.
pub(crate) async fn maintain(
    client: &mut Client,
    now: SystemTime,
    ahead: u32,
    retention_months: u32,
) -> Result<PartitionReport, StoreError> {
    let tx = client.transaction().await.map_err(store_error)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
        .await
        .map_err(store_error)?;
    let mut report = PartitionReport::default();
    let ahead = i32::try_from(ahead).unwrap_or(i32::MAX);
    create_months(&tx, now, 0, ahead, &mut report.created).await?;

    // The oldest month still kept; partitions named for an earlier month go.
    let retention = i32::try_from(retention_months).unwrap_or(i32::MAX);
    let cutoff: String = tx
        .query_one(
            "SELECT to_char(date_trunc('month', $1::timestamptz AT TIME ZONE 'UTC') \
                 - make_interval(months => $2), '\"messages_p\"YYYYMM')",
            &[&now, &retention],
        )
        .await
        .map_err(store_error)?
        .get(0);
    let partitions = tx
        .query(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = 'messages'::regclass ORDER BY 1",
            &[],
        )
        .await
        .map_err(store_error)?;
    for row in partitions {
        let name: String = row.get(0);
        // Only our own names compare as months; anything else an operator attached stays.
        let ours = name.len() == cutoff.len()
            && name.starts_with("messages_p")
            && name["messages_p".len()..]
                .bytes()
                .all(|b| b.is_ascii_digit());
        if ours && name < cutoff {
            tx.batch_execute(&format!("ALTER TABLE messages DETACH PARTITION {name}"))
                .await
                .map_err(store_error)?;
            report.detached.push(name);
        }
    }
    tx.commit().await.map_err(store_error)?;
    Ok(report)
}

/// How long [`ensure_month`] waits for its lock on `messages` before giving up (a transient
/// `lock_not_available`, so the caller retries after a backoff).
///
/// `CREATE TABLE … PARTITION OF` takes an ACCESS EXCLUSIVE lock on `messages`, which waits for
/// every open transaction that has touched the table — and, while it waits, every later
/// statement on `messages` (history reads, the other sink workers' replay probes) queues behind
/// it. One transaction left open for long (a sink worker whose conversation row another session
/// holds: its replay probe read `messages` before it blocked on the row) then stopped every
/// reader and writer of `messages` for as long as it stayed open; with the session holding the
/// row itself waiting on `messages`, never (found by `persistence-sink/tests/
/// independent_partitions.rs`, which hung in 6 of 26 runs). Bounded, the queue clears within
/// this time and the partition is made on a later try, once no transaction is in the way.
const CREATE_LOCK_TIMEOUT: &str = "1s";

/// Creates the partition of the month containing `at` if missing (an insert found none). Fails
/// with a transient error (`StoreError::Unavailable`) when `messages` stays locked by another
/// transaction for [`CREATE_LOCK_TIMEOUT`].
pub(crate) async fn ensure_month(client: &mut Client, at: SystemTime) -> Result<(), StoreError> {
    let tx = client.transaction().await.map_err(store_error)?;
    // The advisory lock first, unbounded as before: its holders (migrations, maintenance, this
    // function) hold it briefly, and waiting for it queues nothing on `messages`.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
        .await
        .map_err(store_error)?;
    tx.batch_execute(&format!("SET LOCAL lock_timeout = '{CREATE_LOCK_TIMEOUT}'"))
        .await
        .map_err(store_error)?;
    create_months(&tx, at, 0, 0, &mut Vec::new()).await?;
    tx.commit().await.map_err(store_error)
}
