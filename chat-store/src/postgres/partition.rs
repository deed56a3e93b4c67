//! Monthly partitions of `messages`: created ahead of time, created on demand for a message
//! whose month has none (an old import, a skewed clock), and detached — not dropped — once
//! wholly older than the retention, so an operator archives or drops them deliberately.
//!
//! Partitions are named `messages_pYYYYMM` and cover `[first of month, first of next month)`
//! in UTC. Month arithmetic is done by PostgreSQL (`date_trunc`, intervals), so there is no
//! calendar code here.

use std::time::SystemTime;

use tokio_postgres::{Client, Transaction};

use crate::StoreError;
use crate::postgres::error::{is_lock_timeout, store_error};
use crate::postgres::schema::SCHEMA_LOCK;

/// What [`maintain`] changed, and what it left for a later run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionReport {
    /// Partitions created by this run, oldest first (`messages_pYYYYMM`).
    pub created: Vec<String>,
    /// Partitions detached by this run, oldest first.
    pub detached: Vec<String>,
    /// Steps not done because `messages` stayed locked for [`DDL_LOCK_TIMEOUT`] (a long
    /// transaction had touched it): the one that timed out and every one after it, in order.
    /// The background maintenance runs again shortly when this is not empty.
    pub deferred: Vec<Step>,
}

/// One change to the partitions of `messages`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `CREATE TABLE name PARTITION OF messages FOR VALUES FROM (from) TO (to)`.
    Create {
        name: String,
        from: String,
        to: String,
    },
    /// `ALTER TABLE messages DETACH PARTITION name`.
    Detach { name: String },
}

/// The name and bounds of the months from `from_months` to `to_months` relative to `at`'s
/// month (inclusive): `(messages_pYYYYMM, 'YYYY-MM-01', 'YYYY-MM-01' of the next month)`.
const MONTHS_SQL: &str = "SELECT to_char(m, '\"messages_p\"YYYYMM'), to_char(m, 'YYYY-MM-DD'), \
        to_char(m + interval '1 month', 'YYYY-MM-DD') \
     FROM generate_series( \
        date_trunc('month', $1::timestamptz AT TIME ZONE 'UTC') + make_interval(months => $2), \
        date_trunc('month', $1::timestamptz AT TIME ZONE 'UTC') + make_interval(months => $3), \
        interval '1 month') AS m";

/// The partitions of `messages` today, by name.
const PARTITIONS_SQL: &str = "SELECT c.relname::text FROM pg_inherits i \
     JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'messages'::regclass ORDER BY 1";

/// How long one step waits for its lock on `messages` before giving up (a transient
/// `lock_not_available`).
///
/// `CREATE TABLE … PARTITION OF` and `DETACH PARTITION` take an ACCESS EXCLUSIVE lock on
/// `messages`, which waits for every open transaction that has touched the table — and, while it
/// waits, every later statement on `messages` (history reads, appends, the sink's replay probes)
/// queues behind it. One transaction left open for long (a sink worker whose conversation row
/// another session holds: its replay probe read `messages` before it blocked on the row; an
/// operator's `BEGIN` in psql) then stopped every reader and writer of `messages` for as long as
/// it stayed open; with the session holding the row itself waiting on `messages`, never (found
/// by `persistence-sink/tests/independent_partitions.rs`, which hung in 6 of 26 runs). Bounded,
/// the queue clears within this time and the step is done on a later try, once no transaction
/// is in the way.
///
/// `DETACH … CONCURRENTLY` (PostgreSQL 14+) would not queue readers, but it still waits for
/// every transaction on `messages` — holding the schema lock that the on-demand creation needs —
/// it cannot run in a transaction block (so not under `pg_advisory_xact_lock`), and one
/// interrupted leaves the partition "detach pending" until a `DETACH … FINALIZE`. A detach is
/// a monthly step with no deadline: bounded and retried, the plain one is simpler and safe.
const DDL_LOCK_TIMEOUT: &str = "1s";

/// Begins a transaction for one step: the schema lock (shared with migrations), then
/// [`DDL_LOCK_TIMEOUT`] for the step's locks on `messages`.
async fn begin_step(client: &mut Client) -> Result<Transaction<'_>, StoreError> {
    let tx = client.transaction().await.map_err(store_error)?;
    // The advisory lock first, unbounded: its holders (migrations, the steps here) hold it
    // briefly, and waiting for it queues nothing on `messages`.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
        .await
        .map_err(store_error)?;
    tx.batch_execute(&format!("SET LOCAL lock_timeout = '{DDL_LOCK_TIMEOUT}'"))
        .await
        .map_err(store_error)?;
    Ok(tx)
}

/// Does `step` in a transaction of its own; `Ok(false)` when there was nothing to do (the
/// partition exists, or is no longer attached). Fails with `StoreError::Unavailable` when
/// `messages` stays locked for [`DDL_LOCK_TIMEOUT`].
async fn run_step(client: &mut Client, step: &Step) -> Result<bool, StoreError> {
    let tx = begin_step(client).await?;
    // Checked under the schema lock: a concurrent run (another broker, the sink) may have done
    // it.
    let (needed, sql) = match step {
        Step::Create { name, from, to } => {
            let exists = tx
                .query_opt(
                    "SELECT 1 FROM pg_class WHERE oid = to_regclass($1)",
                    &[name],
                )
                .await
                .map_err(store_error)?
                .is_some();
            // Names and bounds come from to_char (digits and dashes): no quoting issue.
            let sql = format!(
                "CREATE TABLE {name} PARTITION OF messages \
                 FOR VALUES FROM ('{from} 00:00:00+00') TO ('{to} 00:00:00+00')"
            );
            (!exists, sql)
        }
        Step::Detach { name } => {
            let attached = tx
                .query(PARTITIONS_SQL, &[])
                .await
                .map_err(store_error)?
                .iter()
                .any(|r| r.get::<_, &str>(0) == name);
            // A name read from pg_class, and one of ours (letters and digits).
            (
                attached,
                format!("ALTER TABLE messages DETACH PARTITION {name}"),
            )
        }
    };
    if needed {
        tx.batch_execute(&sql).await.map_err(store_error)?;
    }
    tx.commit().await.map_err(store_error)?;
    Ok(needed)
}

/// The creation of each month from `from_months` to `to_months` relative to `at`'s month.
async fn month_steps(
    client: &Client,
    at: SystemTime,
    from_months: i32,
    to_months: i32,
) -> Result<Vec<Step>, StoreError> {
    Ok(client
        .query(MONTHS_SQL, &[&at, &from_months, &to_months])
        .await
        .map_err(store_error)?
        .iter()
        .map(|m| Step::Create {
            name: m.get(0),
            from: m.get(1),
            to: m.get(2),
        })
        .collect())
}

/// The detachment of each of our partitions whose month is before `retention_months` before
/// `now`'s month.
async fn detach_steps(
    client: &Client,
    now: SystemTime,
    retention_months: u32,
) -> Result<Vec<Step>, StoreError> {
    let retention = i32::try_from(retention_months).unwrap_or(i32::MAX);
    // The oldest month still kept; partitions named for an earlier month go.
    let cutoff: String = client
        .query_one(
            "SELECT to_char(date_trunc('month', $1::timestamptz AT TIME ZONE 'UTC') \
                 - make_interval(months => $2), '\"messages_p\"YYYYMM')",
            &[&now, &retention],
        )
        .await
        .map_err(store_error)?
        .get(0);
    Ok(client
        .query(PARTITIONS_SQL, &[])
        .await
        .map_err(store_error)?
        .iter()
        .map(|row| row.get::<_, String>(0))
        // Only our own names compare as months; anything else an operator attached stays.
        .filter(|name| {
            name.len() == cutoff.len()
                && name.starts_with("messages_p")
                && name["messages_p".len()..]
                    .bytes()
                    .all(|b| b.is_ascii_digit())
                && *name < cutoff
        })
        .map(|name| Step::Detach { name })
        .collect())
}

/// Creates the partitions of `now`'s month and the `ahead` next ones, and detaches every
/// partition whose month ended more than `retention_months` months before `now`'s month
/// began. Idempotent; each step is its own transaction under the schema lock, bounded by
/// [`DDL_LOCK_TIMEOUT`]. The first step that times out ends the run: it and the steps after it
/// are reported as `deferred` (each would wait as long again behind the same transaction,
/// holding readers up each time); any other error is returned, what was done staying done.
pub(crate) async fn maintain(
    client: &mut Client,
    now: SystemTime,
    ahead: u32,
    retention_months: u32,
) -> Result<PartitionReport, StoreError> {
    let ahead = i32::try_from(ahead).unwrap_or(i32::MAX);
    let mut steps = month_steps(client, now, 0, ahead).await?;
    steps.extend(detach_steps(client, now, retention_months).await?);
    let mut report = PartitionReport::default();
    let mut steps = steps.into_iter();
    while let Some(step) = steps.next() {
        match run_step(client, &step).await {
            Ok(false) => {}
            Ok(true) => match step {
                Step::Create { name, .. } => report.created.push(name),
                Step::Detach { name } => report.detached.push(name),
            },
            Err(e) if is_lock_timeout(&e) => {
                report.deferred.push(step);
                report.deferred.extend(steps);
                break;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(report)
}

/// Creates the partition of the month containing `at` if missing (an insert found none). Fails
/// with a transient error (`StoreError::Unavailable`) when `messages` stays locked by another
/// transaction for [`DDL_LOCK_TIMEOUT`]: the sink retries the batch after its backoff, an
/// append answers "unavailable".
pub(crate) async fn ensure_month(client: &mut Client, at: SystemTime) -> Result<(), StoreError> {
    for step in month_steps(client, at, 0, 0).await? {
        run_step(client, &step).await?;
    }
    Ok(())
}
