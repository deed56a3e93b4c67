//! `ChatStore::close` on the streamed store (the broker calls it at shutdown): what was
//! accepted but not yet acknowledged by Kafka is flushed before it returns, against the real
//! PostgreSQL and tansu of `scripts/services.sh`.

mod common;

use std::time::Duration;

use chat_store::conformance::message;
use chat_store::{ChatStore, StreamedStore};

/// Bound on each durability future once `close` returned: its ack is in by then, only the
/// task that hands it over has yet to run.
const SETTLE: Duration = Duration::from_secs(5);

#[tokio::test]
async fn close_flushes_every_accepted_message_to_kafka() -> anyhow::Result<()> {
    let Some(brokers) = common::kafka_brokers("streamed close") else {
        return Ok(());
    };
    let Some(fixture) = common::schema_store("streamed close").await else {
        return Ok(());
    };
    let kafka = common::fresh_topics(brokers, "close", 1).await;
    let store = StreamedStore::start(fixture.store, kafka, 1_000, None)?;
    let mut durable = Vec::new();
    for id in 1..=50 {
        let (_, durability) = store.accept(message(id, "g", "alice")).await?;
        durable.push(durability.expect("a streamed accept is durable later, on Kafka's ack"));
    }
    store.close().await?;
    for durability in durable {
        tokio::time::timeout(SETTLE, durability).await??;
    }
    Ok(())
}
