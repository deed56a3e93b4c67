//! One partition that cannot be applied (its conversation row locked in PostgreSQL, as a slow
//! or stuck transaction would) does not hold back the other partitions: their records, produced
//! after its backlog, still reach PostgreSQL — and once the lock goes, the stalled partition's
//! backlog is applied too, every row once, in record order.
//!
//! Before each partition had its own queue (`pipeline/source.rs`), the fetch task waited for the
//! stalled partition's worker with the other partitions' records queued behind its backlog, and
//! the second conversation's rows never came.
//!
//! The test itself must not hang (it holds a row lock while it waits on the sink): every wait
//! is bounded and fails with what it waited for, the locking session ends whenever the check
//! ends, the runtime has worker threads (a blocked thread cannot stop the timers), and a
//! watchdog thread ends the process if all of that still fails.

mod common;

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, UNIX_EPOCH};

use chat_store::conformance::{group, message};
use chat_store::record::{Event, Record};
use persistence_sink::pipeline::{SinkConfig, run};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio_util::sync::CancellationToken;

/// Records a batch holds in this test: small, so the stalled partition's backlog is several
/// batches (one in its worker, one in its channel, the rest queued).
const BATCH: usize = 20;
/// The stalled conversation's backlog.
const BACKLOG: u64 = 10 * BATCH as u64;
/// Bound on the other partition's rows arriving while the first is stalled.
const WAIT: Duration = Duration::from_secs(20);
/// Bound on any one step (a produce's delivery, a query, the sink's shutdown).
const STEP: Duration = Duration::from_secs(15);
/// Bound on the whole test: it fails (rather than hangs) past this.
const LIMIT: Duration = Duration::from_secs(100);
/// Past this the watchdog thread ends the process: the runtime did not even fail the test.
const WATCHDOG: Duration = Duration::from_secs(120);

/// `step`'s result, or an error naming `what` if it takes longer than [`STEP`].
async fn bounded<T>(what: &str, step: impl Future<Output = T>) -> anyhow::Result<T> {
    tokio::time::timeout(STEP, step)
        .await
        .map_err(|_| anyhow::anyhow!("{what}: no answer in {STEP:?}"))
}

/// Sends `event` keyed by its conversation; where it landed.
async fn send(producer: &FutureProducer, topic: &str, event: &Event) -> anyhow::Result<i32> {
    let payload = Record::from(event.clone()).to_bytes();
    let record = FutureRecord::to(topic)
        .key(event.conversation_id())
        .payload(&payload);
    let delivery = bounded("produce", producer.send(record, Duration::from_secs(10)))
        .await?
        .map_err(|(e, _)| e)?;
    Ok(delivery.partition)
}

async fn rows_of(client: &tokio_postgres::Client, conversation: &str) -> anyhow::Result<i64> {
    let sql = "SELECT count(*) FROM messages WHERE conversation_id = $1";
    let row = bounded("count the rows", client.query_one(sql, &[&conversation])).await??;
    Ok(row.get(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_partition_does_not_hold_back_the_others() -> anyhow::Result<()> {
    std::thread::spawn(|| {
        std::thread::sleep(WATCHDOG);
        eprintln!("independent partitions: still running after {WATCHDOG:?} (see STAGE lines)");
        std::process::exit(101);
    });
    let test = tokio::spawn(stalled_partition());
    match tokio::time::timeout(LIMIT, test).await {
        Ok(ended) => ended?,
        Err(_) => anyhow::bail!("no end after {LIMIT:?} (the last STAGE line says where)"),
    }
}

async fn stalled_partition() -> anyhow::Result<()> {
    let Some(brokers) = common::kafka_brokers("independent partitions") else {
        return Ok(());
    };
    let Some(url) = common::postgres_url("independent partitions") else {
        return Ok(());
    };
    let Some(fixture) = common::schema_store("independent partitions").await else {
        return Ok(());
    };
    let kafka = common::fresh_topics(brokers, "independent", 2).await;
    let producer: FutureProducer = kafka
        .client_config()
        .set("enable.idempotence", "true")
        .set("acks", "all")
        // A delivery the broker never confirms fails within STEP, not librdkafka's 300 s.
        .set("message.timeout.ms", "10000")
        .create()?;
    // Two conversations in different partitions: a probe message per candidate tells where
    // each lands (the key's hash).
    let mut partition_of: HashMap<i32, String> = HashMap::new();
    let mut id = 1u64;
    for candidate in 0..16 {
        let name = format!("c{candidate}");
        group(&*fixture, &name, "alice", &["alice", "bob"]).await;
        let partition = send(
            &producer,
            &kafka.events_topic,
            &Event::Message(message(id, &name, "alice")),
        )
        .await?;
        id += 1;
        partition_of.entry(partition).or_insert(name);
        if partition_of.len() == 2 {
            break;
        }
    }
    anyhow::ensure!(partition_of.len() == 2, "16 keys all in one partition");
    let (stalled, free) = (partition_of[&0].clone(), partition_of[&1].clone());
    eprintln!("STAGE probes sent");

    // The stalled conversation's backlog, before the sink starts.
    let first_backlog_id = id;
    for _ in 0..BACKLOG {
        send(
            &producer,
            &kafka.events_topic,
            &Event::Message(message(id, &stalled, "alice")),
        )
        .await?;
        id += 1;
    }
    eprintln!("STAGE backlog sent");
    // The month of the test's messages (1970) has no partition, and the sink would create it
    // on demand — which cannot happen while the stalled transaction below is open (it read
    // `messages`; `CREATE TABLE … PARTITION OF` needs the table to itself). Made now, as
    // partition maintenance makes a live month's ahead of time: this test is about Kafka
    // partitions, not about DDL behind a long transaction.
    bounded(
        "create the month's partition",
        fixture
            .store
            .maintain_partitions(UNIX_EPOCH + Duration::from_secs(10)),
    )
    .await??;
    // A transaction holding the stalled conversation's row: the sink's position update of
    // that partition waits for it. It ends when `locker` is dropped, with the check below.
    let (locker, conn) = bounded(
        "connect",
        tokio_postgres::connect(&url, tokio_postgres::NoTls),
    )
    .await??;
    tokio::spawn(conn);
    let lock = format!(
        "SET search_path = {}; BEGIN; SELECT 1 FROM conversations WHERE id = '{stalled}' FOR UPDATE",
        fixture.schema
    );
    bounded("lock the stalled conversation", locker.batch_execute(&lock)).await??;

    let config = SinkConfig {
        group_id: common::unique("independent"),
        batch_max: BATCH,
        batch_linger: Duration::from_millis(5),
        connections: 2,
        ..SinkConfig::default()
    };
    let shutdown = CancellationToken::new();
    let sink = run(&kafka, &config, &fixture.store, shutdown.clone());
    let reader = bounded("a pooled connection", fixture.store.client()).await??;
    let check = async {
        // However the check ends, the sink stops and the row lock goes (its batch can finish).
        let stop_sink = shutdown.clone().drop_guard();
        let locker = locker;
        // The stalled partition's first batch is taken and waits on the lock; its backlog
        // queues behind it.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let before = rows_of(&reader, &stalled).await?;
        eprintln!("STAGE slept, before={before}");
        // The other conversation's records, produced behind the stalled backlog.
        for m in id..id + 5 {
            let event = Event::Message(message(m, &free, "alice"));
            send(&producer, &kafka.events_topic, &event).await?;
        }
        // Its probe message plus the five.
        let arrived = tokio::time::timeout(WAIT, async {
            while rows_of(&reader, &free).await.unwrap_or(0) < 6 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        let free_rows = rows_of(&reader, &free).await?;
        let stalled_rows = rows_of(&reader, &stalled).await?;
        eprintln!("STAGE free arrived={} rows={free_rows}", arrived.is_ok());
        bounded("roll back the lock", locker.batch_execute("ROLLBACK")).await??;
        // The lock gone, the backlog follows.
        let caught_up = tokio::time::timeout(WAIT, async {
            while rows_of(&reader, &stalled).await.unwrap_or(0) < BACKLOG as i64 + 1 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        drop(stop_sink);
        anyhow::ensure!(
            before == 0,
            "applied {before} rows of {stalled} through the lock"
        );
        anyhow::ensure!(
            arrived.is_ok(),
            "with {stalled} stalled, {free} got {free_rows} of 6 rows in {WAIT:?}"
        );
        anyhow::ensure!(
            stalled_rows == 0,
            "{stalled} applied while its row was locked"
        );
        anyhow::ensure!(
            caught_up.is_ok(),
            "the stalled backlog was not applied after the lock"
        );
        Ok(())
    };
    let (stats, checked) = tokio::join!(sink, check);
    eprintln!("STAGE sink ended");
    checked?;
    stats?;
    let sql = "SELECT message_id FROM messages WHERE conversation_id = $1 ORDER BY seq";
    let order: Vec<i64> = bounded("read the stalled rows", reader.query(sql, &[&stalled]))
        .await??
        .iter()
        .map(|r| r.get(0))
        .collect();
    // Its probe message first, then the backlog in record order, each once.
    let first = i64::try_from(first_backlog_id)?;
    let backlog: Vec<i64> = (first..first + BACKLOG as i64).collect();
    assert_eq!(order.len(), backlog.len() + 1, "{order:?}");
    assert!(order[0] < first, "{order:?}");
    assert_eq!(order[1..], backlog[..]);
    Ok(())
}
