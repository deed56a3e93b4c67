//! Monthly partitions of `messages`: created ahead of a chosen clock, created on demand for a
//! month without one, detached (kept as tables, out of reads) once older than the retention.

mod common;

use std::time::{Duration, UNIX_EPOCH};

use chat_store::conformance::{group, ids, message};
use chat_store::postgres::PartitionStep;

/// 2040-03-10T12:00:00Z, far from the real clock so its partitions are this test's own.
const MARCH_2040_MS: u64 = 2_214_993_600_000;
const DEC_2034_MS: u64 = 2_051_179_200_000;
const MAR_2035_MS: u64 = 2_056_363_200_000;
const MAY_2040_MS: u64 = 2_222_078_400_000;
const JUN_2037_MS: u64 = 2_128_636_800_000;

async fn partitions(fixture: &common::SchemaStore) -> Vec<String> {
    let client = fixture.store.client().await.expect("client");
    client
        .query(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = 'messages'::regclass ORDER BY 1",
            &[],
        )
        .await
        .expect("list partitions")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test]
async fn partitions_are_created_ahead_of_the_clock_and_idempotently() -> anyhow::Result<()> {
    let Some(fixture) = common::schema_store("partitions ahead").await else {
        return Ok(());
    };
    let at = UNIX_EPOCH + Duration::from_millis(MARCH_2040_MS);
    let report = fixture.store.maintain_partitions(at).await?;
    assert_eq!(
        report.created,
        vec!["messages_p204003", "messages_p204004", "messages_p204005"]
    );
    // The partitions made for the real clock at connect are long past the retention in 2040.
    assert!(
        report
            .detached
            .iter()
            .all(|p| p.as_str() < "messages_p203503"),
        "{report:?}"
    );
    let again = fixture.store.maintain_partitions(at).await?;
    assert!(
        again.created.is_empty() && again.detached.is_empty(),
        "{again:?}"
    );

    // A message lands in its month's partition.
    group(&*fixture, "g", "alice", &["alice"]).await;
    let mut m = message(7, "g", "alice");
    m.timestamp_ms = MAY_2040_MS;
    fixture.append(m.clone()).await?;
    let client = fixture.store.client().await?;
    let in_may: i64 = client
        .query_one("SELECT count(*) FROM messages_p204005", &[])
        .await?
        .get(0);
    assert_eq!(in_may, 1);
    assert_eq!(fixture.history("g", None, 10).await?.0, vec![m]);
    Ok(())
}

#[tokio::test]
async fn a_month_without_partition_gets_one_on_append() -> anyhow::Result<()> {
    let Some(fixture) = common::schema_store("partition on demand").await else {
        return Ok(());
    };
    group(&*fixture, "g", "alice", &["alice"]).await;
    let mut m = message(1, "g", "alice");
    m.timestamp_ms = DEC_2034_MS;
    fixture.append(m).await?;
    assert!(
        partitions(&fixture)
            .await
            .contains(&"messages_p203412".to_owned())
    );
    Ok(())
}

#[tokio::test]
async fn partitions_older_than_the_retention_are_detached_not_dropped() -> anyhow::Result<()> {
    let Some(fixture) = common::schema_store("partition retention").await else {
        return Ok(());
    };
    group(&*fixture, "g", "alice", &["alice"]).await;
    let mut old = message(1, "g", "alice");
    old.timestamp_ms = DEC_2034_MS;
    let mut kept = message(2, "g", "alice");
    kept.timestamp_ms = MAR_2035_MS;
    fixture.append(old).await?;
    fixture.append(kept.clone()).await?;

    // Default retention: 60 months. From March 2040, March 2035 is the oldest month kept.
    let report = fixture
        .store
        .maintain_partitions(UNIX_EPOCH + Duration::from_millis(MARCH_2040_MS))
        .await?;
    assert!(
        report.detached.contains(&"messages_p203412".to_owned()),
        "{report:?}"
    );
    assert!(
        !report.detached.contains(&"messages_p203503".to_owned()),
        "{report:?}"
    );
    let attached = partitions(&fixture).await;
    assert!(!attached.contains(&"messages_p203412".to_owned()));
    assert!(attached.contains(&"messages_p203503".to_owned()));

    // Reads no longer see the detached month; its rows are still there for an operator.
    assert_eq!(ids(&fixture.history("g", None, 10).await?.0), vec![2]);
    let client = fixture.store.client().await?;
    let kept_rows: i64 = client
        .query_one("SELECT count(*) FROM messages_p203412", &[])
        .await?
        .get(0);
    assert_eq!(kept_rows, 1);
    Ok(())
}

/// How long each step of the tests below may wait.
const BOUND: Duration = Duration::from_secs(10);

/// A session in a transaction that has read `messages` (holding its ACCESS SHARE lock until
/// the session commits).
async fn long_transaction(
    fixture: &common::SchemaStore,
) -> anyhow::Result<
    impl std::ops::Deref<Target = impl std::ops::Deref<Target = tokio_postgres::Client>>,
> {
    let long = fixture.store.client().await?;
    long.batch_execute("BEGIN; SELECT count(*) FROM messages")
        .await?;
    Ok(long)
}

/// `work` (which `what` names in the failure), and beside it a reader of `messages` started
/// 300 ms in — behind `work`'s lock request on `messages`, if that is still waiting — each
/// bounded by [`BOUND`]: `work`'s output and the reader's count of conversation g's messages.
async fn beside_a_reader<T>(
    fixture: &common::SchemaStore,
    what: &str,
    work: impl std::future::Future<Output = T>,
) -> anyhow::Result<(T, i64)> {
    let reader = fixture.store.client().await?;
    let count = "SELECT count(*) FROM messages WHERE conversation_id = 'g'";
    let (done, read) = tokio::join!(tokio::time::timeout(BOUND, work), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        tokio::time::timeout(BOUND, reader.query_one(count, &[])).await
    });
    let done = done.map_err(|_| anyhow::anyhow!("{what} waited {BOUND:?}"))?;
    let read = read.map_err(|_| anyhow::anyhow!("a reader of messages waited {BOUND:?}"))??;
    Ok((done, read.get(0)))
}

/// A month without partition behind a long transaction: `CREATE TABLE … PARTITION OF` needs
/// `messages` to itself, so it cannot go ahead while a transaction that read `messages` stays
/// open. It must give up within its lock timeout (a transient error: the sink retries the
/// batch after a backoff) rather than wait there — a waiting ACCESS EXCLUSIVE request holds
/// every later statement on `messages` (history, the sink's other workers) behind it, for as
/// long as that transaction lasts. Before the lock timeout, both bounded waits ran out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_behind_a_long_transaction_does_not_block_readers() -> anyhow::Result<()> {
    let Some(fixture) = common::schema_store("partition behind a transaction").await else {
        return Ok(());
    };
    group(&*fixture, "g", "alice", &["alice"]).await;
    let long = long_transaction(&fixture).await?;
    let mut m = message(1, "g", "alice");
    m.timestamp_ms = JUN_2037_MS;
    let (appended, read) =
        beside_a_reader(&fixture, "the append", fixture.append(m.clone())).await?;
    assert_eq!(read, 0);
    let Err(e) = appended else {
        anyhow::bail!("a partition was created while a transaction held messages");
    };
    assert!(e.is_transient(), "{e}");

    // The transaction gone, the same append goes through.
    long.batch_execute("COMMIT").await?;
    tokio::time::timeout(BOUND, fixture.append(m.clone()))
        .await
        .map_err(|_| anyhow::anyhow!("the append waited {BOUND:?} with no transaction open"))??;
    assert_eq!(fixture.history("g", None, 10).await?.0, vec![m]);
    Ok(())
}

/// The hourly maintenance behind a long transaction: its `CREATE TABLE … PARTITION OF` and
/// `DETACH PARTITION` need `messages` to themselves, like the on-demand creation above, and a
/// waiting request holds every later reader and writer of `messages` behind it. Each step must
/// give up within its lock timeout, leave the rest for a later run, and the reader must go
/// through; once the transaction is gone the next run does what was left. Before the lock
/// timeout the maintenance waited for the transaction, with the reader queued behind it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_behind_a_long_transaction_does_not_block_readers() -> anyhow::Result<()> {
    let Some(fixture) = common::schema_store("maintenance behind a transaction").await else {
        return Ok(());
    };
    group(&*fixture, "g", "alice", &["alice"]).await;
    let long = long_transaction(&fixture).await?;
    // In 2040 three months are to be made and the real clock's partitions to be detached.
    let at = UNIX_EPOCH + Duration::from_millis(MARCH_2040_MS);
    let before = partitions(&fixture).await;
    let started = std::time::Instant::now();
    let (maintained, read) = beside_a_reader(
        &fixture,
        "the maintenance",
        fixture.store.maintain_partitions(at),
    )
    .await?;
    assert_eq!(read, 0);
    // One lock timeout, not one per step: the rest is left for the next run.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let report = maintained?;
    assert!(
        report.created.is_empty() && report.detached.is_empty(),
        "{report:?}"
    );
    assert_eq!(partitions(&fixture).await, before);
    // Every step is left for the next run, the first creation first.
    assert_eq!(report.deferred.len(), 3 + before.len(), "{report:?}");
    assert!(
        matches!(&report.deferred[0], PartitionStep::Create { name, .. } if name == "messages_p204003"),
        "{report:?}"
    );

    // The transaction gone, the next run does it all.
    long.batch_execute("COMMIT").await?;
    let report = tokio::time::timeout(BOUND, fixture.store.maintain_partitions(at))
        .await
        .map_err(|_| anyhow::anyhow!("the maintenance waited {BOUND:?} with no transaction"))??;
    assert_eq!(
        report.created,
        vec!["messages_p204003", "messages_p204004", "messages_p204005"]
    );
    assert_eq!(report.detached, before, "{report:?}");
    Ok(())
}
