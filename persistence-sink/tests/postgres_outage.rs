//! PostgreSQL stopped (`pg_ctl stop -m immediate`) under a running `stompbox-sink`: the sink
//! keeps retrying with capped backoff and commits no offset of what it could not write; once
//! PostgreSQL is back on the same port it catches up, and every message is stored exactly once
//! with its statuses. The cluster is the test's own: the shared one is never stopped.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chat_store::kafka::KafkaConfig;
use chat_store::{PostgresConfig, PostgresStore};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use common::private_postgres::PrivatePostgres;
use common::sink_process::SinkProcess;
use common::workload::{Chat, PER_CONVERSATION, produce, stored};

/// Bound on each wait for the sink (seconds on an idle machine).
const CATCH_UP: Duration = Duration::from_secs(60);

/// The group's committed offsets, partition → next offset (absent: nothing committed).
fn committed(kafka: &KafkaConfig, group: &str) -> anyhow::Result<HashMap<i32, i64>> {
    let consumer: BaseConsumer = kafka.client_config().set("group.id", group).create()?;
    let mut list = TopicPartitionList::new();
    for p in 0..kafka.partitions {
        list.add_partition_offset(&kafka.events_topic, p, Offset::Invalid)?;
    }
    let list = consumer.committed_offsets(list, Duration::from_secs(10))?;
    Ok(list
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some((e.partition(), o)),
            _ => None,
        })
        .collect())
}

async fn connect(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    Ok(client)
}

/// Waits until `sink_progress` passes every acknowledged offset.
async fn until_persisted(
    url: &str,
    topic: &str,
    acked: &HashMap<i32, i64>,
    sink: &SinkProcess,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + CATCH_UP;
    loop {
        let progress: HashMap<i32, i64> = match connect(url).await {
            Ok(client) => client
                .query(
                    "SELECT partition, next_offset FROM sink_progress WHERE topic = $1",
                    &[&topic],
                )
                .await?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect(),
            Err(_) => HashMap::new(),
        };
        if acked
            .iter()
            .all(|(p, next)| progress.get(p).is_some_and(|done| done >= next))
        {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "sink did not persist {acked:?} (progress {progress:?})\n{}",
            sink.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sink_waits_out_a_postgres_outage_and_catches_up_exactly() -> anyhow::Result<()> {
    let Some(brokers) = common::kafka_brokers("postgres outage") else {
        return Ok(());
    };
    let Some(mut pg) = PrivatePostgres::init("postgres outage")? else {
        return Ok(());
    };
    let url = pg.url();
    {
        let mut config: PostgresConfig = url.parse()?;
        config.background_maintenance = false;
        let store = PostgresStore::connect(config).await?;
        Chat::new(100).create(&store).await;
    }
    let chat = Chat::new(100);
    let kafka = common::fresh_topics(brokers, "pg-outage", 3).await;
    let group = common::unique("pg-outage-group");
    let dir = tempfile::tempdir()?;
    let log = dir.path().join("sink.log");
    let flags = ["--batch-size", "500", "--session-timeout", "6s"];
    let mut sink = SinkProcess::start(&kafka, &url, &group, &log, &flags)?;

    let half = PER_CONVERSATION / 2;
    let before = produce(&kafka, &chat.events(0, half)).await?;
    until_persisted(&url, &kafka.events_topic, &before, &sink).await?;

    pg.stop_immediate()?;
    let after = produce(&kafka, &chat.events(half, PER_CONVERSATION)).await?;
    // The sink has the new records and cannot write them: it retries, and commits none.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let during = committed(&kafka, &group)?;
    for (p, offset) in &during {
        assert!(
            before.get(p).is_some_and(|b| offset <= b),
            "partition {p}: offset {offset} committed during the outage, beyond {before:?}"
        );
    }
    assert!(
        sink.is_running(),
        "the sink must wait, not exit\n{}",
        sink.log()
    );
    assert!(
        sink.log().contains("PostgreSQL unavailable, retrying"),
        "{}",
        sink.log()
    );

    pg.start()?;
    until_persisted(&url, &kafka.events_topic, &after, &sink).await?;
    let (stored, distinct) = stored(&connect(&url).await?).await?;
    assert_eq!(stored, chat.expected(), "{}", sink.log());
    assert_eq!(distinct, stored.messages);
    let committed_after = committed(&kafka, &group)?;
    assert!(
        after
            .iter()
            .all(|(p, next)| committed_after.get(p) == Some(next)),
        "committed {committed_after:?}, acked {after:?}"
    );

    sink.stop_gracefully()?;
    Ok(())
}
