//! The bench's chat: conversations of two members spread over the partitions, and MESSAGE
//! records for them with fresh ids, sent through the real idempotent producer.

use std::time::{SystemTime, UNIX_EPOCH};

use chat_store::kafka::EventProducer;
use chat_store::record::Event;
use chat_store::{ChatStore, ConversationKind, NewConversation, StoredMessage};
use futures_util::StreamExt;

/// Sends in flight at once: enough to fill librdkafka's batches (linger 5 ms) without
/// approaching its default queue bound of 100,000 messages.
const IN_FLIGHT: usize = 20_000;

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

    /// Sends messages `range` as fast as the producer takes them; fails on the first refusal.
    pub async fn produce(
        &self,
        producer: &EventProducer,
        range: std::ops::Range<u64>,
    ) -> anyhow::Result<()> {
        let mut acks = futures_util::stream::iter(range)
            .map(|n| producer.send(self.message(n)))
            .buffer_unordered(IN_FLIGHT);
        while let Some(ack) = acks.next().await {
            ack?;
        }
        Ok(())
    }
}
