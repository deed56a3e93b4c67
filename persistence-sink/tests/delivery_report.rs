//! The producer's delivery report answers each record's sender and releases what the record
//! held (the streamed store's pending slot and in-flight ticket) when Kafka answers, whether or
//! not anyone still waits for the answer; a failed delivery also reaches the failure hook (the
//! store replaces a producer that may be stuck). Against tansu from `scripts/services.sh`, and
//! against a port where nothing listens.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chat_store::conformance::message;
use chat_store::kafka::{EventProducer, KafkaConfig, OnFailure};
use chat_store::record::Event;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Bound on Kafka's answer: tansu answers in milliseconds; this is for a loaded CI machine.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_record_releases_its_slot_when_kafka_acknowledges_it_unawaited() -> anyhow::Result<()> {
    let Some(brokers) = common::kafka_brokers("delivery report") else {
        return Ok(());
    };
    let config = common::fresh_topics(brokers, "reports", 3).await;
    let producer: EventProducer<OwnedSemaphorePermit> = EventProducer::with_hook(&config, None)?;
    let slots = Arc::new(Semaphore::new(1));
    let event = Event::Message(message(1, "a", "alice"));

    let slot = Arc::clone(&slots).try_acquire_owned()?;
    drop(producer.enqueue(&event, None, slot)?); // nobody waits for this record's ack
    assert_eq!(slots.available_permits(), 0, "held while Kafka has it");
    tokio::time::timeout(ANSWER_TIMEOUT, slots.acquire())
        .await
        .expect("the slot comes back with Kafka's ack")?
        .forget();

    // Awaited, the ack names where the record landed, and the slot is free by then.
    let slots = Arc::new(Semaphore::new(1));
    let slot = Arc::clone(&slots).try_acquire_owned()?;
    let acked = tokio::time::timeout(ANSWER_TIMEOUT, producer.enqueue(&event, None, slot)?)
        .await
        .expect("answered")?;
    assert!((0..3).contains(&acked.partition) && acked.offset >= 0);
    assert_eq!(slots.available_permits(), 1, "released before the answer");
    Ok(())
}

#[tokio::test]
async fn a_failed_delivery_answers_releases_and_calls_the_hook() -> anyhow::Result<()> {
    // A port nothing listens on: every delivery times out.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let mut config = KafkaConfig::new(closed.to_string());
    config.events_topic = common::unique("reports");
    config.delivery_timeout = Duration::from_millis(500);
    let failures = Arc::new(AtomicUsize::new(0));
    let hook: OnFailure = {
        let failures = Arc::clone(&failures);
        Box::new(move |_| {
            failures.fetch_add(1, Ordering::SeqCst);
        })
    };
    let producer: EventProducer<OwnedSemaphorePermit> =
        EventProducer::with_hook(&config, Some(hook))?;
    let slots = Arc::new(Semaphore::new(2));
    let event = Event::Message(message(1, "a", "alice"));

    let unawaited = producer.enqueue(&event, None, Arc::clone(&slots).try_acquire_owned()?)?;
    drop(unawaited);
    let awaited = producer.enqueue(&event, None, Arc::clone(&slots).try_acquire_owned()?)?;
    let report = tokio::time::timeout(ANSWER_TIMEOUT, awaited)
        .await
        .expect("a failed delivery is answered too");
    assert!(report.is_err(), "not acknowledged: {report:?}");
    tokio::time::timeout(ANSWER_TIMEOUT, slots.acquire_many(2))
        .await
        .expect("both slots come back, awaited or not")?
        .forget();
    assert_eq!(
        failures.load(Ordering::SeqCst),
        2,
        "each failure reached the hook"
    );
    Ok(())
}
