//! The streamed store keeps a conversation's messages in the order `accept` was called, while
//! many accepts run at once (as the broker's sequencer runs them) and every one carries a
//! clientMessageId, so each waits for its idempotency lookup in PostgreSQL (answered a batch
//! at a time). The callers wake from a batch's answers in no guaranteed order (here, runs of
//! them reversed), and the store hands them to the producer in wake order. **It fails on main
//! (beac828)**, so it is `#[ignore]`d: a fix (per-conversation turns in `accept`, commit
//! 89a65dc on branch `streamed`) made it pass but cut the chat path's throughput (10k msgs/s at
//! load 2: 72k of 100k stored instead of all), so it is not on this branch's tip. Run it with
//! `--ignored`. Against the real PostgreSQL and tansu of `scripts/services.sh`: the records are
//! read back from Kafka.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use chat_store::conformance::message;
use chat_store::record::{Event, Record};
use chat_store::{Appended, ChatStore, StreamedStore};
use futures_util::stream::{FuturesOrdered, StreamExt};
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};

/// Bound on waiting for the acks and the records back (a loaded CI machine).
const TIMEOUT: Duration = Duration::from_secs(120);
const CONVERSATIONS: u64 = 8;
/// Sends per round; the rounds overlap, so lookup batches of many sizes run at once.
const ROUND: u64 = 400;
const ROUNDS: u64 = 10;

#[tokio::test]
#[ignore = "fails on main: a conversation's records reach Kafka out of call order (see the module doc)"]
async fn concurrent_accepts_reach_kafka_in_call_order_per_conversation() -> anyhow::Result<()> {
    let Some(brokers) = common::kafka_brokers("streamed order") else {
        return Ok(());
    };
    let Some(fixture) = common::schema_store("streamed order").await else {
        return Ok(());
    };
    let kafka = common::fresh_topics(brokers, "order", 3).await;
    let store = StreamedStore::start(fixture.store, kafka.clone(), 100_000, None)?;

    // Futures built in call order and driven together, as the sequencer does: each one's
    // lookup is queued when it is first polled, in that order.
    let mut running = FuturesOrdered::new();
    let mut durable = Vec::new();
    let total = ROUND * ROUNDS;
    for id in 1..=total {
        let mut m = message(id, &format!("c{}", id % CONVERSATIONS), "alice");
        m.client_message_id = Some(format!("cm-{id}"));
        running.push_back(store.accept(m));
        // Let a round's lookups go out before the next round queues behind them.
        if id % ROUND == 0 {
            for _ in 0..ROUND / 2 {
                let (appended, durability) = running.next().await.expect("queued")?;
                assert!(matches!(appended, Appended::Stored { .. }), "{appended:?}");
                durable.push(durability.expect("acknowledged later by Kafka"));
            }
        }
    }
    while let Some(accepted) = running.next().await {
        let (appended, durability) = accepted?;
        assert!(matches!(appended, Appended::Stored { .. }), "{appended:?}");
        durable.push(durability.expect("acknowledged later by Kafka"));
    }
    tokio::time::timeout(TIMEOUT, async {
        for durability in durable {
            durability.await?;
        }
        anyhow::Ok(())
    })
    .await??;

    let consumer: StreamConsumer = kafka
        .client_config()
        .set("group.id", common::unique("order"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()?;
    consumer.subscribe(&[&kafka.events_topic])?;
    let mut by_conversation: HashMap<String, Vec<u64>> = HashMap::new();
    let mut received = 0;
    tokio::time::timeout(TIMEOUT, async {
        while received < total {
            let record = consumer.recv().await?;
            if let Event::Message(m) = Record::try_from(record.payload().unwrap_or_default())?.event
            {
                by_conversation
                    .entry(m.conversation_id)
                    .or_default()
                    .push(m.message_id);
                received += 1;
            }
        }
        anyhow::Ok(())
    })
    .await??;
    assert_eq!(by_conversation.len() as u64, CONVERSATIONS);
    for (conversation, ids) in by_conversation {
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(
            ids, sorted,
            "{conversation}: Kafka holds its messages in call order, once each"
        );
    }
    Ok(())
}
