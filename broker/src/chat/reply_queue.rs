//! The chat's reply queues: `/user/queue/<name>` for each name below carries only what the chat
//! itself says (messages, receipts, typing, presence, sync and history replies, errors,
//! conversation events). A client receiving on one of them trusts that the body came from the
//! chat (a message's `senderId` is the authenticated sender's), so no client may SEND there —
//! not to another user, and not to itself — or one user could speak for the chat, and for
//! any other user, towards anyone.

use crate::app::Refused;
use crate::destination::Destination;

/// Every `/user/queue/<name>` the chat's effects deliver to.
pub const RESERVED: [&str; 8] = [
    "messages",
    "receipts",
    "typing",
    "presence",
    "sync",
    "history",
    "errors",
    "conversations",
];

/// The reply queue `destination` names, if it is one of the chat's.
pub fn reserved(destination: &Destination) -> Option<&str> {
    match destination {
        Destination::User { name, .. } if RESERVED.contains(&name.as_str()) => Some(name),
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
        for name in RESERVED {
            for raw in [
                format!("/user/alice/queue/{name}"),
                format!("/user/queue/{name}"),
            ] {
                let destination = Destination::parse(&raw).expect("a user destination");
                assert_eq!(reserved(&destination), Some(name), "{raw}");
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
