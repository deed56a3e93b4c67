//! Delivery state of a message per recipient: SENT → DELIVERED → READ, never backwards.

use serde::{Deserialize, Serialize};

use crate::conversation::{ConversationId, UserId};

/// Ordered: `Sent < Delivered < Read`, so "moves forward" is a comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReceiptStatus {
    Sent,
    Delivered,
    Read,
}

/// A status that actually moved forward (never reported when it would go backwards or stay).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    pub message_id: u64,
    pub conversation_id: ConversationId,
    /// Who sent the message: the user to tell.
    pub sender_id: UserId,
    /// The recipient whose status moved.
    pub user_id: UserId,
    pub status: ReceiptStatus,
    pub at_ms: u64,
}

/// READ watermark moved: everything up to `up_to` in `conversation_id` read by `user_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadMark {
    pub conversation_id: ConversationId,
    pub user_id: UserId,
    /// The new watermark: the id of a message of the conversation.
    pub up_to: u64,
    pub at_ms: u64,
    /// Senders of newly-read messages, deduplicated, excluding the reader.
    pub senders: Vec<UserId>,
}
