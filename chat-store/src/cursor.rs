//! Where a client's sync got to: per conversation, the last position (`seq`) it holds.
//!
//! A conversation's positions are 1, 2, 3, … in the order the store made its messages
//! visible — assigned where that order is decided (the SQLite writer; PostgreSQL under the
//! conversation's row lock, in the inserting transaction; the sink, in Kafka partition order).
//! So "everything after position n" read at any moment is a suffix that only ever grows at its
//! end: a client that keeps the position of the last message it got from a sync can never
//! miss one that becomes visible later, whatever the nodes' clocks or the writes' delays.
//! Message ids stay what they were (unique, time-sortable per node); they are no longer what
//! sync orders by.

use std::collections::BTreeMap;

use crate::conversation::ConversationId;
use crate::message::StoredMessage;

/// A sync request's starting point.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cursor {
    /// Per conversation, the last position held: messages after it are wanted.
    pub positions: BTreeMap<ConversationId, u64>,
    /// For a conversation missing from `positions`: messages with a larger id are wanted (0:
    /// all of them). What an older client's `afterMessageId` said, so it can move to a cursor
    /// without replaying everything once.
    pub after_message_id: u64,
}

impl Cursor {
    /// The cursor moved past `messages` (the answer to a sync from it).
    pub fn advanced(&self, messages: &[Sequenced]) -> Self {
        let mut next = self.clone();
        for m in messages {
            let at = next
                .positions
                .entry(m.message.conversation_id.clone())
                .or_default();
            *at = (*at).max(m.seq);
        }
        next
    }
}

/// A stored message and its position in its conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sequenced {
    /// 1 for a conversation's first message, then one more for each.
    pub seq: u64,
    pub message: StoredMessage,
}
