//! Conversation rooms: every conversation has a topic, `/topic/conversation.<id>`, that
//! carries a copy of each of its messages. The room belongs to the chat: only the chat
//! publishes on it (a client SEND there is refused), and only the conversation's members may
//! subscribe (checked against the conversations this node has seen, since a SUBSCRIBE cannot
//! wait for the store).

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

#[cfg(test)]
mod tests {
    use super::*;

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
