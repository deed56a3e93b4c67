//! The streamed store keeps a conversation's messages in the order `accept` was called, while
//! many accepts run at once (as the broker's sequencer runs them) and every one carries a
//! clientMessageId, so each waits for its idempotency lookup in PostgreSQL (answered a batch
//! at a time). The callers wake from a batch's answers in no guaranteed order (here, runs of
//! them reversed); on 5d38349 each handed its record to the producer on waking, and this test
//! failed (runs of a conversation's records reversed in Kafka). The accept line
//! (`chat-store/src/streamed/line.rs`) hands them over in call order. A second part mixes in
//! messages without a client id: they must not overtake earlier ones still being looked up.
//! Against the real PostgreSQL and tansu of `scripts/services.sh`: the records are read back
//! from Kafka.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chat_store::conformance::message;
use chat_store::kafka::KafkaConfig;
use chat_store::record::{Event, Record};
use chat_store::{Appended, ChatStore, StoreError, StreamedStore};
use futures_util::stream::{FuturesOrdered, StreamExt};
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};

/// Bound on waiting for the acks and the records back (a loaded CI machine).
const TIMEOUT: Duration = Duration::from_secs(120);
const CONVERSATIONS: u64 = 8;
/// Sends per round; the rounds overlap, so lookup batches of many sizes run at once.
const ROUND: u64 = 400;
const ROUNDS: u64 = 10;
const PARTITIONS: i32 = 3;
/// How long reading back waits for a record beyond the expected ones.
const MORE_WAIT: Duration = Duration::from_secs(2);

/// What one send of a run is.
#[derive(Debug, Clone, Copy)]
enum Send {
    /// A new message with a clientMessageId (looked up in PostgreSQL).
    WithId,
    /// A new message with none (nothing to look up).
    WithoutId,
    /// The same clientMessageId as message `original`, sent while that one is in flight.
    RetryOf(u64),
}

/// What the store answered, by message id, and what Kafka holds, by conversation.
#[derive(Debug, Default)]
struct Outcome {
    stored: Vec<u64>,
    duplicates: Vec<(u64, u64)>,
    refused: Vec<u64>,
    in_kafka: HashMap<String, Vec<u64>>,
}

fn client_id(id: u64, send: Send) -> Option<String> {
    match send {
        Send::WithId => Some(format!("cm-{id}")),
        Send::WithoutId => None,
        Send::RetryOf(original) => Some(format!("cm-{original}")),
    }
}

/// Sends `ROUND * ROUNDS` messages over `CONVERSATIONS` conversations through a fresh
/// `StreamedStore` with `max_pending` slots, futures built in call order and driven together
/// as the sequencer does (each one's place in line is taken when it is first polled, in that
/// order); waits for the stored ones' acks and reads every record back. `None`: no services.
async fn run(name: &str, kind: fn(u64) -> Send, max_pending: usize) -> Option<Outcome> {
    let brokers = common::kafka_brokers(name)?;
    let fixture = common::schema_store(name).await?;
    let kafka = common::fresh_topics(brokers, "order", PARTITIONS).await;
    let store = StreamedStore::start(fixture.store, kafka.clone(), max_pending, None)
        .expect("start the streamed store");

    let mut running = FuturesOrdered::new();
    let mut outcome = Outcome::default();
    let mut durable = Vec::new();
    let mut answered = |id: u64, accepted: Result<(Appended, Option<_>), StoreError>| match accepted
    {
        Ok((Appended::Stored { .. }, durability)) => {
            outcome.stored.push(id);
            durable.push(durability.expect("acknowledged later by Kafka"));
        }
        Ok((Appended::Duplicate { original }, None)) => {
            outcome.duplicates.push((id, original.message_id));
        }
        Ok((appended, _)) => panic!("message {id}: {appended:?}"),
        Err(StoreError::Unavailable(_)) => outcome.refused.push(id),
        Err(e) => panic!("message {id}: {e}"),
    };
    let total = ROUND * ROUNDS;
    for id in 1..=total {
        let mut m = message(id, &format!("c{}", id % CONVERSATIONS), "alice");
        m.client_message_id = client_id(id, kind(id));
        let accepted = store.accept(m);
        running.push_back(async move { (id, accepted.await) });
        // Let a round's lookups go out before the next round queues behind them.
        if id % ROUND == 0 {
            for _ in 0..ROUND / 2 {
                let (id, accepted) = running.next().await.expect("queued");
                answered(id, accepted);
            }
        }
    }
    while let Some((id, accepted)) = running.next().await {
        answered(id, accepted);
    }
    tokio::time::timeout(TIMEOUT, async {
        for durability in durable {
            durability
                .await
                .expect("Kafka acknowledged a stored message");
        }
    })
    .await
    .expect("acks within the timeout");
    outcome.in_kafka = read_back(&kafka, outcome.stored.len()).await;
    Some(outcome)
}

/// Every message record of the events topic, by conversation, in partition order; checks
/// that the topic holds `expected` records and no more arrive.
async fn read_back(kafka: &KafkaConfig, expected: usize) -> HashMap<String, Vec<u64>> {
    let consumer: StreamConsumer = kafka
        .client_config()
        .set("group.id", common::unique("order"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    consumer
        .subscribe(&[&kafka.events_topic])
        .expect("subscribe");
    let mut by_conversation: HashMap<String, Vec<u64>> = HashMap::new();
    let mut received = 0;
    tokio::time::timeout(TIMEOUT, async {
        while received < expected {
            let record = consumer.recv().await.expect("a record");
            let payload = record.payload().unwrap_or_default();
            if let Event::Message(m) = Record::try_from(payload).expect("a record").event {
                by_conversation
                    .entry(m.conversation_id)
                    .or_default()
                    .push(m.message_id);
                received += 1;
            }
        }
    })
    .await
    .expect("the records back within the timeout");
    // Nothing more: a refused send's record would be here by now (its refusal was answered
    // after every record before it was handed over, and those are all acknowledged).
    // (The store's sink watch adds barrier markers: not messages.)
    let more = tokio::time::timeout(MORE_WAIT, async {
        loop {
            let record = consumer.recv().await.expect("a record");
            let payload = record.payload().unwrap_or_default();
            if let Event::Message(m) = Record::try_from(payload).expect("a record").event {
                return m.message_id;
            }
        }
    })
    .await;
    assert!(more.is_err(), "a message beyond the stored ones: {more:?}");
    by_conversation
}

/// Each conversation's records are in id (= call) order, once each, and together they are
/// exactly the stored messages.
fn assert_in_call_order(outcome: &Outcome) {
    let mut all = HashSet::new();
    for (conversation, ids) in &outcome.in_kafka {
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(
            ids, &sorted,
            "{conversation}: Kafka holds its messages in call order, once each"
        );
        all.extend(ids.iter().copied());
    }
    let stored: HashSet<u64> = outcome.stored.iter().copied().collect();
    assert_eq!(all, stored, "Kafka holds exactly the stored messages");
}

#[tokio::test]
async fn concurrent_accepts_reach_kafka_in_call_order_per_conversation() {
    let Some(outcome) = run("streamed order", |_| Send::WithId, 100_000).await else {
        return;
    };
    assert_eq!(outcome.stored.len() as u64, ROUND * ROUNDS, "{outcome:?}");
    assert_eq!(outcome.in_kafka.len() as u64, CONVERSATIONS);
    assert_in_call_order(&outcome);
}

/// Every third message has no client id; every one of the form 12k+8 retries the message
/// before it (12k+7, which has one) while that one is still in line.
fn mixed(id: u64) -> Send {
    match (id % 3, id % 4) {
        (0, _) => Send::WithoutId,
        (2, 0) => Send::RetryOf(id - 1),
        _ => Send::WithId,
    }
}

#[tokio::test]
async fn sends_without_client_id_and_retries_keep_call_order() {
    let Some(outcome) = run("streamed order mixed", mixed, 100_000).await else {
        return;
    };
    let retries = (1..=ROUND * ROUNDS)
        .filter(|&id| matches!(mixed(id), Send::RetryOf(_)))
        .count();
    assert!(outcome.refused.is_empty(), "{:?}", outcome.refused);
    assert_eq!(outcome.duplicates.len(), retries);
    for (retry, original) in &outcome.duplicates {
        assert_eq!(
            *original,
            retry - 1,
            "a retry is answered with its original"
        );
    }
    assert_in_call_order(&outcome);
}

/// With few slots for messages awaiting Kafka's ack, many sends are refused (`Unavailable`,
/// the broker's RATE_LIMITED): none of them reaches Kafka, and the ones after a refusal still
/// go in call order.
#[tokio::test]
async fn refused_sends_leave_no_record_and_the_rest_keep_call_order() {
    let Some(outcome) = run("streamed order refused", mixed, 16).await else {
        return;
    };
    assert!(!outcome.refused.is_empty(), "some sends found no slot");
    assert!(!outcome.stored.is_empty(), "some sends found one");
    assert_in_call_order(&outcome);
}
