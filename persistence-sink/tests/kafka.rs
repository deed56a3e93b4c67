//! Records through a real Kafka-API broker (tansu from `scripts/services.sh`): topics created
//! when missing (and left alone when present), the idempotent producer's acks, and every
//! record consumed back in order per conversation, each conversation in one partition.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use chat_store::conformance::message;
use chat_store::kafka::{EventProducer, KafkaConfig, ensure_topics};
use chat_store::record::{Event, Record};
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};

/// Bound on waiting for the records back: tansu answers in milliseconds; this is for a loaded
/// CI machine.
const CONSUME_TIMEOUT: Duration = Duration::from_secs(60);

fn config(brokers: String) -> KafkaConfig {
    let mut config = KafkaConfig::new(brokers);
    let topic = common::unique("events");
    config.dead_letter_topic = format!("{topic}.dlt");
    config.events_topic = topic;
    config.partitions = 3;
    config
}

#[tokio::test]
async fn produced_records_come_back_in_order_per_conversation() -> anyhow::Result<()> {
    let Some(brokers) = common::kafka_brokers("kafka round trip") else {
        return Ok(());
    };
    let config = config(brokers);
    ensure_topics(&config).await?;
    ensure_topics(&config).await?; // already there: fine

    let producer = EventProducer::new(&config)?;
    let mut sent: Vec<Event> = Vec::new();
    for i in 0..30u64 {
        let conversation = ["a", "b", "c"][(i % 3) as usize];
        sent.push(Event::Message(message(i + 1, conversation, "alice")));
        if i % 5 == 4 {
            sent.push(Event::Delivered {
                conversation_id: conversation.into(),
                user_id: "bob".into(),
                message_ids: vec![i + 1],
                at_ms: i,
            });
        }
    }
    let mut partition_of: HashMap<String, i32> = HashMap::new();
    for event in &sent {
        let acked = producer.send(event.clone()).await?;
        let conversation = event.conversation_id().to_owned();
        let first = *partition_of.entry(conversation).or_insert(acked.partition);
        assert_eq!(first, acked.partition, "one conversation, one partition");
    }

    let consumer: StreamConsumer = config
        .client_config()
        .set("group.id", common::unique("group"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()?;
    consumer.subscribe(&[&config.events_topic])?;
    let mut received: Vec<Event> = Vec::new();
    // tansu under-reports the high watermark after batched produce: count records instead.
    tokio::time::timeout(CONSUME_TIMEOUT, async {
        while received.len() < sent.len() {
            let msg = consumer.recv().await?;
            let record = Record::try_from(msg.payload().unwrap_or_default())?;
            assert_eq!(
                msg.key(),
                Some(record.event.conversation_id().as_bytes()),
                "keyed by conversation"
            );
            received.push(record.event);
        }
        anyhow::Ok(())
    })
    .await??;

    for conversation in ["a", "b", "c"] {
        let of = |events: &[Event]| -> Vec<Event> {
            events
                .iter()
                .filter(|e| e.conversation_id() == conversation)
                .cloned()
                .collect()
        };
        assert_eq!(of(&received), of(&sent), "order of {conversation}");
    }
    Ok(())
}
