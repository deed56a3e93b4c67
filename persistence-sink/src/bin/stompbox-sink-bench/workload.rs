//! The bench's chat: conversations of two members spread over the partitions, and MESSAGE
//! records for them with fresh ids, sent through the real idempotent producer.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chat_store::kafka::{Ack, EventProducer, is_queue_full};
use chat_store::record::Event;
use chat_store::{ChatStore, ConversationKind, NewConversation, StoredMessage};
use futures_util::StreamExt;

/// The wait before enqueueing again when librdkafka's queue is full and no ack of ours is
/// outstanding (the plain producers' loop waits the same).
const QUEUE_FULL_PAUSE: Duration = Duration::from_millis(1);

#[derive(Debug, Clone)]
pub struct Workload {
    pub conversations: usize,
    /// Message ids start above this, so two runs into one schema never collide.
    pub first_id: u64,
}

fn conversation_id(i: usize) -> String {
    format!("bench-{i}")
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Workload {
    pub async fn create_conversations(&self, store: &dyn ChatStore) -> anyhow::Result<()> {
        for i in 0..self.conversations {
            let (a, b) = (format!("user-{}", 2 * i), format!("user-{}", 2 * i + 1));
            store
                .create_conversation(NewConversation {
                    id: conversation_id(i),
                    kind: ConversationKind::Group,
                    name: None,
                    creator: a.clone(),
                    members: vec![a, b],
                    at_ms: 1_000,
                })
                .await?;
        }
        Ok(())
    }

    /// The `n`th message: a ~100-byte body and a client id, like a chat client's send.
    pub fn message(&self, n: u64) -> Event {
        let i = (n % self.conversations as u64) as usize;
        let id = self.first_id + n;
        Event::Message(StoredMessage {
            message_id: id,
            conversation_id: conversation_id(i),
            sender_id: format!("user-{}", 2 * i),
            content: format!(
                "bench message {id}: the quick brown fox jumps over the lazy dog, twice over the lazy dog"
            ),
            content_type: "text/plain".into(),
            client_message_id: Some(format!("c-{id}")),
            timestamp_ms: now_ms(),
        })
    }

    /// Sends messages `range` as fast as the producer takes them, as the streamed store does:
    /// each record enqueued with its own ack, every ack awaited (in order: a later record of
    /// a partition is never acknowledged before an earlier one). Like the plain producers'
    /// loop, it waits only when librdkafka's queue is full; fails on the first refusal.
    pub async fn produce(
        &self,
        producer: &EventProducer,
        range: std::ops::Range<u64>,
    ) -> anyhow::Result<()> {
        let mut acks: VecDeque<Ack> = VecDeque::new();
        for n in range {
            let event = self.message(n);
            loop {
                match producer.enqueue(&event, None, ()) {
                    Ok(ack) => break acks.push_back(ack),
                    Err(e) if is_queue_full(&e) => match acks.pop_front() {
                        Some(oldest) => {
                            oldest.await?;
                        }
                        None => tokio::time::sleep(QUEUE_FULL_PAUSE).await,
                    },
                    Err(e) => return Err(e.into()),
                }
            }
        }
        for ack in acks {
            ack.await?;
        }
        Ok(())
    }

    /// The loop this bench had before `produce` (until 2026-12-07): `window` sends in flight
    /// as futures polled together. Kept as the `stompbox-unordered` kind, to tell the loop's
    /// cost from the producer's.
    pub async fn produce_unordered(
        &self,
        producer: &EventProducer,
        range: std::ops::Range<u64>,
        window: usize,
    ) -> anyhow::Result<()> {
        let mut acks = futures_util::stream::iter(range)
            .map(|n| producer.send(self.message(n)))
            .buffer_unordered(window);
        while let Some(ack) = acks.next().await {
            ack?;
        }
        Ok(())
    }
}
