//! `sink_progress`, the sync barrier's source: it moves with the rows in one transaction (a
//! refused batch moves neither), only forward (a replayed or late batch never moves it back),
//! per topic and partition; and through the whole pipeline it ends past every record, including
//! a dead-lettered last one.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use chat_store::conformance::{group, message};
use chat_store::kafka::EventProducer;
use chat_store::postgres::Position;
use chat_store::postgres::apply::apply_batch_at;
use chat_store::record::Event;
use persistence_sink::pipeline::{SinkConfig, run};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio_util::sync::CancellationToken;

/// Bound on waiting for the sink on a loaded machine.
const CATCH_UP: Duration = Duration::from_secs(60);

fn at(topic: &str, partition: i32, next_offset: i64) -> Position<'_> {
    Position {
        topic,
        partition,
        next_offset,
    }
}

#[tokio::test]
async fn progress_moves_with_the_rows_and_only_forward() -> anyhow::Result<()> {
    let Some(fixture) = common::schema_store("sink progress").await else {
        return Ok(());
    };
    group(&*fixture, "g", "alice", &["alice", "bob"]).await;
    let mut client = fixture.store.client().await?;
    assert!(fixture.store.sink_progress("t").await?.is_empty());

    let first = Event::Message(message(1, "g", "alice"));
    apply_batch_at(&mut client, &[&first], &[at("t", 0, 5), at("t", 1, 2)]).await?;
    apply_batch_at(&mut client, &[], &[at("other", 0, 9)]).await?;
    assert_eq!(
        fixture.store.sink_progress("t").await?,
        HashMap::from([(0, 5), (1, 2)])
    );

    // A replay of older offsets leaves it where it was; a later batch moves it.
    apply_batch_at(&mut client, &[&first], &[at("t", 0, 3), at("t", 1, 7)]).await?;
    assert_eq!(
        fixture.store.sink_progress("t").await?,
        HashMap::from([(0, 5), (1, 7)])
    );

    // A refused batch (unknown conversation) moves neither rows nor progress.
    let bad = Event::Message(message(2, "nope", "alice"));
    apply_batch_at(&mut client, &[&bad], &[at("t", 0, 50)])
        .await
        .expect_err("unknown conversation");
    assert_eq!(fixture.store.sink_progress("t").await?[&0], 5);
    Ok(())
}

#[tokio::test]
async fn the_pipeline_leaves_progress_past_every_record_dead_letters_included() -> anyhow::Result<()>
{
    let Some(brokers) = common::kafka_brokers("pipeline progress") else {
        return Ok(());
    };
    let Some(fixture) = common::schema_store("pipeline progress").await else {
        return Ok(());
    };
    let kafka = common::fresh_topics(brokers, "progress", 1).await;
    group(&*fixture, "g", "alice", &["alice", "bob"]).await;

    let producer = EventProducer::new(&kafka)?;
    let mut acked = Vec::new();
    for id in 1..=6 {
        // Record 4 names an unknown conversation: refused by the schema, found by bisection.
        let conversation = if id == 4 { "nope" } else { "g" };
        acked.push(
            producer
                .send(Event::Message(message(id, conversation, "alice")))
                .await?,
        );
    }
    // The last record does not even decode: dead-lettered, and done too.
    let raw: FutureProducer = kafka.client_config().create()?;
    let delivery = raw
        .send(
            FutureRecord::to(&kafka.events_topic)
                .key("g")
                .payload("not json"),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)?;
    let (partition, last) = (delivery.partition, delivery.offset);
    assert!(
        acked
            .iter()
            .all(|a| a.partition == partition && a.offset < last)
    );

    let shutdown = CancellationToken::new();
    let config = SinkConfig {
        group_id: common::unique("progress-group"),
        ..SinkConfig::default()
    };
    let sink = run(&kafka, &config, &fixture.store, shutdown.clone());
    let watch = async {
        let reached = tokio::time::timeout(CATCH_UP, async {
            loop {
                let progress = fixture.store.sink_progress(&kafka.events_topic).await;
                if progress.is_ok_and(|p| p.get(&partition) == Some(&(last + 1))) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        shutdown.cancel();
        reached
    };
    let (stats, reached) = tokio::join!(sink, watch);
    reached.map_err(|_| anyhow::anyhow!("progress never passed offset {last}"))?;
    let stats = stats?;
    assert_eq!(stats.applied.messages_inserted, 5, "{stats:?}");
    assert_eq!(stats.dead_lettered, 2, "{stats:?}");
    let client = fixture.store.client().await?;
    let ids: Vec<i64> = client
        .query("SELECT message_id FROM messages ORDER BY 1", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ids, vec![1, 2, 3, 5, 6]);
    Ok(())
}
