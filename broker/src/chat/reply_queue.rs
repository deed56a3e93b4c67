//! The chat's reply queues: `/user/queue/<name>` for each name below carries only what the chat
//! itself says (messages, receipts, typing, presence, sync and history replies, errors,
//! conversation events). A client receiving on one of them trusts that the body came from the
//! chat (a message's `senderId` is the authenticated sender's), so no client may SEND there —
//! not to another user, and not to itself — or one user could speak for the chat, and for
//! any other user, towards anyone.

use crate::app::Refused;
use crate::destination::Destination;

/// A `/user/queue/<name>` the chat delivers to. Every chat effect names one of these, so the
/// set a client may not SEND to is exactly the set the chat uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyQueue {
    Messages,
    Receipts,
    Typing,
    Presence,
    Sync,
    History,
    Errors,
    Conversations,
}

impl ReplyQueue {
    pub const ALL: [ReplyQueue; 8] = [
        ReplyQueue::Messages,
        ReplyQueue::Receipts,
        ReplyQueue::Typing,
        ReplyQueue::Presence,
        ReplyQueue::Sync,
        ReplyQueue::History,
        ReplyQueue::Errors,
        ReplyQueue::Conversations,
    ];

    /// The `<name>` of `/user/queue/<name>`.
    pub fn name(self) -> &'static str {
        match self {
            ReplyQueue::Messages => "messages",
            ReplyQueue::Receipts => "receipts",
            ReplyQueue::Typing => "typing",
            ReplyQueue::Presence => "presence",
            ReplyQueue::Sync => "sync",
            ReplyQueue::History => "history",
            ReplyQueue::Errors => "errors",
            ReplyQueue::Conversations => "conversations",
        }
    }
}

/// The reply queue `destination` names, if it is one of the chat's.
pub fn reserved(destination: &Destination) -> Option<ReplyQueue> {
    match destination {
        Destination::User { name, .. } => ReplyQueue::ALL.into_iter().find(|q| q.name() == name),
        _ => None,
    }
}

/// Why a client may not SEND to a reply queue.
pub fn refused(raw: &str) -> Refused {
    Refused(format!(
        "{raw:?} is one of the chat's reply queues: only the chat delivers to it (send chat \
         messages with /app/chat.send)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chats_user_queues_are_reserved_and_others_are_not() {
        for queue in ReplyQueue::ALL {
            for raw in [
                format!("/user/alice/queue/{}", queue.name()),
                format!("/user/queue/{}", queue.name()),
            ] {
                let destination = Destination::parse(&raw).expect("a user destination");
                assert_eq!(reserved(&destination), Some(queue), "{raw}");
            }
        }
        for raw in [
            "/user/alice/queue/inbox",
            "/user/alice/queue/messages.archive",
            "/topic/messages",
            "/queue/messages",
        ] {
            let destination = Destination::parse(raw).expect("a destination");
            assert_eq!(reserved(&destination), None, "{raw}");
        }
    }
}
