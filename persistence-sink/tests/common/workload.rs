//! The chat the outage tests push through a sink: conversations of alice (sender) and bob,
//! messages, DELIVERED marks for every tenth message and one READ mark halfway — and the
//! final state those must leave, whichever way the sink was interrupted.

use std::collections::HashMap;
use std::time::Duration;

use chat_store::ChatStore;
use chat_store::conformance::{group, message};
use chat_store::kafka::KafkaConfig;
use chat_store::record::{Event, Record};
use rdkafka::producer::{FutureProducer, Producer};

/// Messages per conversation; a multiple of 10 so every message gets a DELIVERED.
pub const PER_CONVERSATION: u64 = 100;

pub struct Chat {
    pub conversations: u64,
    /// The messages' time (ms since the epoch).
    pub start_ms: u64,
}

/// What PostgreSQL must hold once the sink has caught up.
#[derive(Debug, PartialEq, Eq)]
pub struct Expected {
    pub messages: i64,
    /// Receipts at READ (2): messages at or below bob's watermark.
    pub read: i64,
    /// Receipts at DELIVERED (1): the rest.
    pub delivered: i64,
}

impl Chat {
    pub fn new(conversations: u64) -> Self {
        let start_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Chat {
            conversations,
            start_ms,
        }
    }

    fn id(&self, conversation: u64, n: u64) -> u64 {
        conversation * 1_000_000 + n + 1
    }

    fn name(conversation: u64) -> String {
        format!("c{conversation}")
    }

    pub async fn create(&self, store: &dyn ChatStore) {
        for c in 0..self.conversations {
            group(store, &Chat::name(c), "alice", &["alice", "bob"]).await;
        }
    }

    /// The events of messages `from..to` of every conversation (conversations interleaved;
    /// each conversation's events in order).
    pub fn events(&self, from: u64, to: u64) -> Vec<Event> {
        let mut events = Vec::new();
        for n in from..to {
            for c in 0..self.conversations {
                let name = Chat::name(c);
                let mut m = message(self.id(c, n), &name, "alice");
                // Now, not 1970: a month past the retention has its partition detached by
                // the sink's maintenance at start, and its records are refused.
                m.timestamp_ms = self.start_ms + n;
                events.push(Event::Message(m));
                if n % 10 == 9 {
                    events.push(Event::Delivered {
                        conversation_id: name.clone(),
                        user_id: "bob".into(),
                        message_ids: (n - 9..=n).map(|k| self.id(c, k)).collect(),
                        at_ms: 50_000 + n,
                    });
                }
                if n == PER_CONVERSATION / 2 - 1 {
                    events.push(Event::Read {
                        conversation_id: name,
                        user_id: "bob".into(),
                        up_to: self.id(c, n),
                        at_ms: 60_000 + n,
                    });
                }
            }
        }
        events
    }

    pub fn expected(&self) -> Expected {
        let messages = (self.conversations * PER_CONVERSATION) as i64;
        let read = (self.conversations * (PER_CONVERSATION / 2)) as i64;
        Expected {
            messages,
            read,
            delivered: messages - read,
        }
    }
}

/// What PostgreSQL holds: (rows, distinct ids, READ receipts, DELIVERED receipts) as
/// [`Expected`] plus the distinct count, so a doubled row shows.
pub async fn stored(client: &tokio_postgres::Client) -> anyhow::Result<(Expected, i64)> {
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM messages), (SELECT count(DISTINCT message_id) FROM messages), \
                    (SELECT count(*) FROM message_receipts WHERE status = 2), \
                    (SELECT count(*) FROM message_receipts WHERE status = 1)",
            &[],
        )
        .await?;
    Ok((
        Expected {
            messages: row.get(0),
            read: row.get(2),
            delivered: row.get(3),
        },
        row.get(1),
    ))
}

/// Produces `events` in order with an idempotent `acks=all` producer (the broker's settings),
/// enqueueing all before waiting, so thousands take well under a second. Returns, per
/// partition, the offset after the last acknowledged record.
pub async fn produce(kafka: &KafkaConfig, events: &[Event]) -> anyhow::Result<HashMap<i32, i64>> {
    let producer: FutureProducer = kafka
        .client_config()
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        // One record per record batch. tansu 0.6.0 (memory storage) hands multi-record
        // batches back with offsets that disagree with the produce acks (seen here: a consumer
        // resuming at committed offset 500 was served records from 4814 on, then offsets going
        // backwards), so a sink restarted mid-topic would skip records. Real Kafka does not;
        // docs/persistence.md, "tansu findings".
        .set("batch.num.messages", "1")
        .create()?;
    let mut acks = Vec::with_capacity(events.len());
    for event in events {
        let payload = Record::from(event.clone()).to_bytes();
        let record = rdkafka::producer::FutureRecord::to(&kafka.events_topic)
            .key(event.conversation_id())
            .payload(&payload);
        // send_result enqueues now, in call order (the queue holds 100,000 by default).
        acks.push(producer.send_result(record).map_err(|(e, _)| e)?);
    }
    producer.flush(Duration::from_secs(30))?;
    let mut next: HashMap<i32, i64> = HashMap::new();
    for ack in acks {
        let delivery = ack.await?.map_err(|(e, _)| e)?;
        let entry = next.entry(delivery.partition).or_default();
        *entry = (*entry).max(delivery.offset + 1);
    }
    Ok(next)
}
