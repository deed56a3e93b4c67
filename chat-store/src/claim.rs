//! [`SharedClaims`]: idempotency keys `(sender, clientMessageId)` shared by every process that
//! writes to one store. The streamed store answers a retry from what it remembers and from
//! PostgreSQL, but PostgreSQL learns of a message only when the sink gets to it; in a cluster a
//! retry through another node inside that lag finds neither. A claim shared by all nodes (the
//! cluster's Redis) is taken before the message goes to Kafka, so that retry finds the id the
//! first attempt took.
//!
//! Only the id and its timestamp are shared: a retry carries the same message (the client's
//! contract), so its content is the original's, and the key stays small in Redis.

use crate::error::StoreError;
use crate::message::StoredMessage;

/// The message already holding a claimed key: its id and timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimHolder {
    pub message_id: u64,
    pub timestamp_ms: u64,
}

impl ClaimHolder {
    /// `retry` under the holder's id and timestamp: the original, as the retry describes it.
    pub fn original_of(self, retry: &StoredMessage) -> StoredMessage {
        StoredMessage {
            message_id: self.message_id,
            timestamp_ms: self.timestamp_ms,
            ..retry.clone()
        }
    }
}

#[async_trait::async_trait]
pub trait SharedClaims: Send + Sync + std::fmt::Debug + 'static {
    /// Claims `message`'s `(sender_id, client_message_id)` for it unless a message holds the
    /// key already (then that one is returned and nothing changes). Only called for messages
    /// with a client id. An error means the claim is unknown (the store decides what to do).
    async fn claim(&self, message: &StoredMessage) -> Result<Option<ClaimHolder>, StoreError>;
}
