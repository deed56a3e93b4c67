//! The whole cold path through real services: records produced to tansu, consumed by the sink
//! in a consumer group, rows in PostgreSQL. A second sink group replaying the topic from the
//! start adds no rows; a restarted sink resumes after its committed offsets; a poison record
//! goes to the dead-letter topic without stalling the partition.

mod common;

use std::time::Duration;

use chat_store::conformance::{group, ids, message};
use chat_store::kafka::{EventProducer, KafkaConfig, ensure_topics};
use chat_store::record::Event;
use persistence_sink::pipeline::{SinkConfig, SinkStats, run};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio_util::sync::CancellationToken;

/// Bound on waiting for the sink to catch up on a loaded CI machine.
const CATCH_UP: Duration = Duration::from_secs(60);

fn kafka_config(brokers: String) -> KafkaConfig {
    let mut config = KafkaConfig::new(brokers);
    let topic = common::unique("events");
    config.dead_letter_topic = format!("{topic}.dlt");
    config.events_topic = topic;
    config.partitions = 2;
    config
}

/// Runs a sink in `group` until `done` says the rows are there, then stops it.
async fn sink_until(
    kafka: &KafkaConfig,
    group_id: &str,
    fixture: &common::SchemaStore,
    done: impl AsyncFn(&common::SchemaStore) -> bool,
) -> anyhow::Result<SinkStats> {
    let config = SinkConfig {
        group_id: group_id.into(),
        ..SinkConfig::default()
    };
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    let sink = run(kafka, &config, &fixture.store, shutdown);
    let watch = async {
        let caught_up = tokio::time::timeout(CATCH_UP, async {
            while !done(fixture).await {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        // Give the sink a moment to commit the offsets of the batch just applied.
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop.cancel();
        caught_up
    };
    let (stats, caught_up) = tokio::join!(sink, watch);
    caught_up.map_err(|_| anyhow::anyhow!("sink did not catch up in {CATCH_UP:?}"))?;
    Ok(stats?)
}

async fn message_rows(fixture: &common::SchemaStore) -> i64 {
    let client = fixture.store.client().await.expect("client");
    client
        .query_one("SELECT count(*) FROM messages", &[])
        .await
        .expect("count")
        .get(0)
}

#[tokio::test]
async fn records_reach_postgres_once_through_replays_and_restarts() -> anyhow::Result<()> {
    let Some(brokers) = common::kafka_brokers("sink pipeline") else {
        return Ok(());
    };
    let Some(fixture) = common::schema_store("sink pipeline").await else {
        return Ok(());
    };
    let kafka = kafka_config(brokers);
    ensure_topics(&kafka).await?;
    group(&*fixture, "g", "alice", &["alice", "bob"]).await;
    group(&*fixture, "h", "carol", &["carol", "bob"]).await;

    let producer = EventProducer::new(&kafka)?;
    for id in 1..=20u64 {
        let (conversation, sender) = if id % 2 == 0 {
            ("g", "alice")
        } else {
            ("h", "carol")
        };
        producer
            .send(Event::Message(message(id, conversation, sender)))
            .await?;
    }
    producer
        .send(Event::Read {
            conversation_id: "g".into(),
            user_id: "bob".into(),
            up_to: 10,
            at_ms: 50_000,
        })
        .await?;
    // A poison record: not JSON. It must be dead-lettered, and the records after it applied.
    let raw: FutureProducer = kafka.client_config().create()?;
    raw.send(
        FutureRecord::to(&kafka.events_topic)
            .key("g")
            .payload("garbage"),
        Duration::from_secs(10),
    )
    .await
    .map_err(|(e, _)| e)?;
    producer
        .send(Event::Message(message(21, "g", "alice")))
        .await?;

    let first = sink_until(&kafka, "sink-a", &fixture, async |f| {
        message_rows(f).await == 21
    })
    .await?;
    assert_eq!(first.applied.messages_inserted, 21, "{first:?}");
    assert_eq!(first.applied.read_marks, 1, "{first:?}");
    assert_eq!(first.dead_lettered, 1, "{first:?}");
    let (page, _) = fixture.history("g", None, 100).await?;
    assert_eq!(ids(&page), vec![2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 21]);

    // Restarted with the same group: resumes after its commits, applies only the new record.
    producer
        .send(Event::Message(message(22, "h", "carol")))
        .await?;
    let resumed = sink_until(&kafka, "sink-a", &fixture, async |f| {
        message_rows(f).await == 22
    })
    .await?;
    assert_eq!(resumed.applied.messages_inserted, 1, "{resumed:?}");
    assert_eq!(resumed.applied.messages_skipped, 0, "{resumed:?}");

    // Another group replays the whole topic: every earlier message is skipped, no row is
    // doubled. Markers in both conversations (so in every partition used) tell when it is done.
    producer
        .send(Event::Message(message(23, "g", "alice")))
        .await?;
    producer
        .send(Event::Message(message(24, "h", "carol")))
        .await?;
    let replay = sink_until(&kafka, "sink-b", &fixture, async |f| {
        message_rows(f).await == 24
    })
    .await?;
    assert_eq!(replay.applied.messages_inserted, 2, "{replay:?}");
    assert_eq!(replay.applied.messages_skipped, 22, "{replay:?}");
    assert_eq!(replay.dead_lettered, 1, "{replay:?}");
    assert_eq!(message_rows(&fixture).await, 24);
    Ok(())
}
