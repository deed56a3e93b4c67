//! A chat request, typed once where it enters: a SEND to `/app/<action>` (the action names the
//! operation, the body is its JSON), a call of the HTTP API (`chat/http.rs` builds the
//! variant itself), or a recipient's ACK of chat messages ([`ChatRequest::Acked`]).
//! Everything after the entry works on this enum, never on the action's name or raw JSON.

use std::fmt;
use std::str::FromStr;

use serde::de::DeserializeOwned;

use super::error::AppError;
use super::model;

/// The operations of the chat contract, by the name that follows `/app/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Send,
    Delivered,
    Read,
    Typing,
    Sync,
    History,
    CreateConversation,
    UpdateMembers,
    ListConversations,
    PresenceQuery,
    PushRegister,
    PushUnregister,
}

impl Action {
    const ALL: [Action; 12] = [
        Action::Send,
        Action::Delivered,
        Action::Read,
        Action::Typing,
        Action::Sync,
        Action::History,
        Action::CreateConversation,
        Action::UpdateMembers,
        Action::ListConversations,
        Action::PresenceQuery,
        Action::PushRegister,
        Action::PushUnregister,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Action::Send => "chat.send",
            Action::Delivered => "chat.delivered",
            Action::Read => "chat.read",
            Action::Typing => "chat.typing",
            Action::Sync => "chat.sync",
            Action::History => "chat.history",
            Action::CreateConversation => "conversation.create",
            Action::UpdateMembers => "conversation.members",
            Action::ListConversations => "conversation.list",
            Action::PresenceQuery => "presence.query",
            Action::PushRegister => "push.register",
            Action::PushUnregister => "push.unregister",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Action {
    type Err = AppError;

    fn from_str(s: &str) -> Result<Self, AppError> {
        Action::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| AppError::UnknownAction(s.to_string()))
    }
}

#[derive(Debug)]
pub enum ChatRequest {
    Send(model::SendMessage),
    /// Message ids the user's client says it has received (`/app/chat.delivered`).
    Delivered(Vec<u64>),
    /// Message ids the user's client ACKed: DELIVERED as well, but acknowledging is not
    /// asking, so it is free of the rate limit (a sync replay is acknowledged message by
    /// message, and a refused ACK would lose a receipt).
    Acked(Vec<u64>),
    Read(model::Read),
    Typing(model::Typing),
    Sync(model::Sync),
    History(model::History),
    CreateConversation(model::CreateConversation),
    UpdateMembers(model::UpdateMembers),
    ListConversations,
    PresenceQuery(model::PresenceQuery),
    /// A device for push notifications (`/app/push.register`).
    PushRegister(stompbox_push::Device),
    PushUnregister(stompbox_push::Device),
}

impl ChatRequest {
    /// Bytes the request holds while it waits in the sequencer (its strings and lists, and a
    /// fixed overhead): what the sequencer's byte bound counts.
    pub fn weight(&self) -> usize {
        let names = |names: &[String]| names.iter().map(|n| n.len() + 24).sum::<usize>();
        256 + match self {
            ChatRequest::Send(send) => {
                send.content.len()
                    + send.conversation_id.as_ref().map_or(0, String::len)
                    + send.recipient_id.as_ref().map_or(0, String::len)
                    + send.client_message_id.as_ref().map_or(0, String::len)
                    + send.content_type.as_ref().map_or(0, String::len)
            }
            ChatRequest::Delivered(ids) | ChatRequest::Acked(ids) => ids.len() * 8,
            ChatRequest::CreateConversation(create) => {
                names(&create.members) + create.name.as_ref().map_or(0, String::len)
            }
            ChatRequest::UpdateMembers(update) => {
                update.conversation_id.len() + names(&update.add) + names(&update.remove)
            }
            ChatRequest::PresenceQuery(query) => names(&query.user_ids),
            ChatRequest::Read(read) => read.conversation_id.len(),
            ChatRequest::Typing(typing) => typing.conversation_id.len(),
            ChatRequest::History(history) => history.conversation_id.len(),
            ChatRequest::Sync(_) | ChatRequest::ListConversations => 0,
            ChatRequest::PushRegister(device) | ChatRequest::PushUnregister(device) => {
                device.address().len() + 256
            }
        }
    }

    /// The operation's name, the `operation` label of `stompbox_chat_requests_total`.
    pub fn operation(&self) -> &'static str {
        match self {
            ChatRequest::Send(_) => "send",
            ChatRequest::Delivered(_) => "delivered",
            ChatRequest::Acked(_) => "acked",
            ChatRequest::Read(_) => "read",
            ChatRequest::Typing(_) => "typing",
            ChatRequest::Sync(_) => "sync",
            ChatRequest::History(_) => "history",
            ChatRequest::CreateConversation(_) => "create_conversation",
            ChatRequest::UpdateMembers(_) => "update_members",
            ChatRequest::ListConversations => "list_conversations",
            ChatRequest::PresenceQuery(_) => "presence",
            ChatRequest::PushRegister(_) => "push_register",
            ChatRequest::PushUnregister(_) => "push_unregister",
        }
    }

    /// The sender's own id of a message (errors about it name it).
    pub fn client_message_id(&self) -> Option<&str> {
        match self {
            ChatRequest::Send(send) => send.client_message_id.as_deref(),
            _ => None,
        }
    }
}

/// A request that could not be typed.
#[derive(Debug)]
pub struct Malformed {
    pub error: AppError,
    /// The `clientMessageId` the body named, if it named one: even a malformed send's error
    /// says which message failed.
    pub client_message_id: Option<String>,
}

impl From<AppError> for Malformed {
    fn from(error: AppError) -> Self {
        Malformed {
            error,
            client_message_id: None,
        }
    }
}

fn json<T: DeserializeOwned>(body: &[u8]) -> Result<T, AppError> {
    Ok(serde_json::from_slice(body)?)
}

/// A SEND to `/app/<action>`: the action and the body.
impl TryFrom<(&str, &[u8])> for ChatRequest {
    type Error = Malformed;

    fn try_from((action, body): (&str, &[u8])) -> Result<Self, Malformed> {
        Ok(match action.parse::<Action>()? {
            Action::Send => match json(body) {
                Ok(send) => ChatRequest::Send(send),
                Err(error) => {
                    // Only on this error path is the body read a second time, loosely.
                    let client_message_id = serde_json::from_slice::<serde_json::Value>(body)
                        .ok()
                        .and_then(|v| v.get("clientMessageId")?.as_str().map(str::to_string));
                    return Err(Malformed {
                        error,
                        client_message_id,
                    });
                }
            },
            Action::Delivered => {
                let delivered: model::Delivered = json(body)?;
                ChatRequest::Delivered(delivered.message_ids.iter().map(|id| id.0).collect())
            }
            Action::Read => ChatRequest::Read(json(body)?),
            Action::Typing => ChatRequest::Typing(json(body)?),
            Action::Sync => ChatRequest::Sync(json(body)?),
            Action::History => ChatRequest::History(json(body)?),
            Action::CreateConversation => ChatRequest::CreateConversation(json(body)?),
            Action::UpdateMembers => ChatRequest::UpdateMembers(json(body)?),
            // Takes no arguments: whatever the body holds is ignored.
            Action::ListConversations => ChatRequest::ListConversations,
            Action::PresenceQuery => ChatRequest::PresenceQuery(json(body)?),
            Action::PushRegister => ChatRequest::PushRegister(json(body)?),
            Action::PushUnregister => ChatRequest::PushUnregister(json(body)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(action: &str, body: &str) -> Result<ChatRequest, Malformed> {
        ChatRequest::try_from((action, body.as_bytes()))
    }

    #[test]
    fn every_action_name_reads_back() {
        for action in Action::ALL {
            assert_eq!(
                action.name().parse::<Action>().expect("a known name"),
                action
            );
        }
        assert!(matches!(
            "chat.nope".parse::<Action>(),
            Err(AppError::UnknownAction(name)) if name == "chat.nope"
        ));
    }

    #[test]
    fn ids_arrive_as_numbers() {
        let request = typed("chat.delivered", r#"{"messageIds":["12",13]}"#).expect("well formed");
        assert!(matches!(request, ChatRequest::Delivered(ids) if ids == [12, 13]));
    }

    #[test]
    fn a_malformed_send_still_names_its_client_message_id() {
        let malformed = typed("chat.send", r#"{"clientMessageId":"cm-1","bogus":1}"#)
            .expect_err("unknown field");
        assert_eq!(malformed.client_message_id.as_deref(), Some("cm-1"));
        assert_eq!(malformed.error.code(), "BAD_REQUEST");
    }

    #[test]
    fn an_unknown_action_is_refused_before_its_body_is_read() {
        let malformed = typed("chat.nope", "not json").expect_err("unknown");
        assert_eq!(malformed.error.code(), "UNKNOWN_DESTINATION");
    }

    #[test]
    fn listing_ignores_its_body() {
        assert!(matches!(
            typed("conversation.list", "anything"),
            Ok(ChatRequest::ListConversations)
        ));
    }
}
