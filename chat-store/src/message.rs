//! A stored chat message and the outcome of appending one.

use serde::{Deserialize, Serialize};

use crate::conversation::{ConversationId, UserId};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredMessage {
    /// The Snowflake id assigned by the broker: unique, increasing in accept order.
    pub message_id: u64,
    pub conversation_id: ConversationId,
    pub sender_id: UserId,
    pub content: String,
    pub content_type: String,
    /// With `sender_id`, the idempotency key of a client retry.
    pub client_message_id: Option<String>,
    pub timestamp_ms: u64,
}

/// What [`crate::ChatStore::append`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// The message is now durably stored (or, from `accept`, on its way).
    Stored {
        /// Its position in its conversation (`Cursor`), where the store gives it at once;
        /// `None` from the streamed store, whose sink gives it later.
        seq: Option<u64>,
    },
    /// The same sender already stored a message with this `client_message_id`; nothing new was
    /// stored, and `original` is what the retry should be answered with.
    Duplicate { original: StoredMessage },
}
