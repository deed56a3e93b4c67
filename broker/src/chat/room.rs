//! Conversation rooms: every conversation has a topic, `/topic/conversation.<id>`, that
//! carries a copy of each of its messages. The room belongs to the chat: only the chat
//! publishes on it (a client SEND there is refused), and only the conversation's members may
//! subscribe (checked against the conversations this node has seen, since a SUBSCRIBE cannot
//! wait for the store).
//!
//! In a cluster a GROUP's copies for its members' `/user/queue/messages` cross nodes once for
//! the room, on the room's channel, which a node listens to while it has a member online;
//! members who joined within `--room-join-grace` still get their own copy
//! ([`split_joined`]), since their nodes may not listen to the room yet.

use std::time::Duration;

use chat_store::Conversation;

use crate::app::Refused;
use crate::destination::Destination;

/// Prefix of the room topics' names.
const CONVERSATION_TOPIC: &str = "conversation.";

/// The room topic's name (after `/topic/`) of a conversation.
pub fn topic(conversation_id: &str) -> String {
    format!("{CONVERSATION_TOPIC}{conversation_id}")
}

/// The conversation whose room `destination` is, if it is one.
pub fn conversation_of(destination: &Destination) -> Option<&str> {
    match destination {
        Destination::Topic(name) => name.strip_prefix(CONVERSATION_TOPIC),
        _ => None,
    }
}

/// Why a client may not use a room as it tried to.
pub fn refused(raw: &str) -> Refused {
    Refused(format!(
        "{raw:?} is a conversation room: only its members may subscribe, and only \
         /app/chat.send publishes to it"
    ))
}

/// `conversation`'s members at `at_ms`: those who joined at least `grace` before, and those
/// who joined since (their nodes learn of the membership and subscribe to the room within
/// milliseconds; the grace covers stalls).
pub fn split_joined(
    conversation: &Conversation,
    at_ms: u64,
    grace: Duration,
) -> (Vec<String>, Vec<String>) {
    let since = at_ms.saturating_sub(grace.as_millis() as u64);
    let (settled, joined): (Vec<_>, Vec<_>) = conversation
        .members
        .iter()
        .partition(|m| m.joined_at_ms < since);
    let names = |members: Vec<&chat_store::Member>| {
        members.into_iter().map(|m| m.user_id.clone()).collect()
    };
    (names(settled), names(joined))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_who_joined_within_the_grace_are_apart() {
        let member = |user: &str, joined_at_ms| chat_store::Member {
            user_id: user.into(),
            role: chat_store::Role::Member,
            joined_at_ms,
        };
        let conversation = Conversation {
            id: "g:1".into(),
            kind: chat_store::ConversationKind::Group,
            name: None,
            creator: "old".into(),
            members: vec![member("old", 1_000), member("new", 9_500)],
            created_at_ms: 1_000,
        };
        let (settled, joined) = split_joined(&conversation, 10_000, Duration::from_secs(1));
        assert_eq!((settled, joined), (vec!["old".into()], vec!["new".into()]));
        let (settled, joined) = split_joined(&conversation, 10_000, Duration::ZERO);
        assert_eq!(settled.len(), 2);
        assert!(joined.is_empty());
    }

    #[test]
    fn a_room_is_a_topic_named_for_its_conversation() {
        let room = Destination::parse(&format!("/topic/{}", topic("g:42"))).expect("a topic");
        assert_eq!(conversation_of(&room), Some("g:42"));
        let other = Destination::parse("/topic/conversations").expect("a topic");
        assert_eq!(conversation_of(&other), None);
        let queue = Destination::parse("/queue/conversation.g:42").expect("a queue");
        assert_eq!(conversation_of(&queue), None);
    }
}
