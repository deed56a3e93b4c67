//! The JSON bodies of the chat contract (docs/protocol.md, "Chat"): what clients send to
//! `/app/...` and what they receive on `/user/queue/...`.

use std::collections::BTreeMap;

use chat_store::{Conversation, ConversationKind, ReceiptStatus, StoredMessage, UserId};
use serde::{Deserialize, Serialize};

/// Most members a group may have (a presence query names at most as many users).
pub const MAX_MEMBERS: usize = 1000;

/// Milliseconds since the Unix epoch as RFC 3339 UTC with milliseconds.
pub fn rfc3339(ms: u64) -> String {
    let secs = (ms / 1000) as i64;
    let millis = ms % 1000;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // Civil-from-days (Howard Hinnant's algorithm), valid for the proleptic Gregorian calendar.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{millis:03}Z")
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateConversation {
    #[serde(rename = "type")]
    pub kind: ConversationKind,
    pub name: Option<String>,
    pub members: Vec<UserId>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateMembers {
    pub conversation_id: String,
    #[serde(default)]
    pub add: Vec<UserId>,
    #[serde(default)]
    pub remove: Vec<UserId>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SendMessage {
    pub conversation_id: Option<String>,
    pub recipient_id: Option<UserId>,
    pub content: String,
    pub client_message_id: Option<String>,
    pub content_type: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Delivered {
    pub message_ids: Vec<IdString>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Read {
    pub conversation_id: String,
    pub message_id: IdString,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Typing {
    pub conversation_id: String,
    pub typing: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PresenceQuery {
    pub user_ids: Vec<UserId>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Sync {
    /// The older starting point: messages with a larger id. With a `cursor`, what applies to
    /// the conversations the cursor does not name.
    pub after_message_id: Option<IdString>,
    /// Exact sync: per conversation, the last position (`seq`) the client holds.
    pub cursor: Option<BTreeMap<String, u64>>,
    /// With a `cursor`: ids the client already holds past it (got live); they are not sent
    /// again (the answer's `positions` places them), though the cursor moves past them.
    pub seen: Option<Vec<IdString>>,
    pub limit: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct History {
    pub conversation_id: String,
    pub before_message_id: Option<IdString>,
    pub limit: Option<usize>,
}

/// A message id as clients write it: a decimal string (64-bit ids overflow JavaScript
/// numbers), though a JSON number is accepted too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdString(pub u64);

impl<'de> Deserialize<'de> for IdString {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Number(u64),
        }
        match Raw::deserialize(d)? {
            Raw::Number(n) => Ok(IdString(n)),
            Raw::Text(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

impl std::str::FromStr for IdString {
    type Err = NotAnId;

    fn from_str(s: &str) -> Result<Self, NotAnId> {
        s.parse().map(IdString).map_err(|_| NotAnId(s.to_string()))
    }
}

/// A string that is not a message id.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not a message id")]
pub struct NotAnId(pub String);

/// Serializes a u64 id as a decimal string.
pub fn id_string<S: serde::Serializer>(id: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&id.to_string())
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageOut<'a> {
    #[serde(serialize_with = "id_string")]
    pub message_id: u64,
    pub conversation_id: &'a str,
    pub sender_id: &'a str,
    pub content: &'a str,
    pub content_type: &'a str,
    pub timestamp: String,
    pub client_message_id: Option<&'a str>,
    /// Its position in its conversation, where known when it is sent (not on a live message
    /// of the streamed store, whose positions the sink gives later).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

impl<'a> From<&'a StoredMessage> for MessageOut<'a> {
    fn from(m: &'a StoredMessage) -> Self {
        MessageOut {
            message_id: m.message_id,
            conversation_id: &m.conversation_id,
            sender_id: &m.sender_id,
            content: &m.content,
            content_type: &m.content_type,
            timestamp: rfc3339(m.timestamp_ms),
            client_message_id: m.client_message_id.as_deref(),
            seq: None,
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationOut<'a> {
    pub conversation_id: &'a str,
    #[serde(rename = "type")]
    pub kind: ConversationKind,
    pub name: Option<&'a str>,
    pub creator: &'a str,
    pub members: Vec<&'a str>,
    pub admins: Vec<&'a str>,
    pub created_at: String,
}

impl<'a> From<&'a Conversation> for ConversationOut<'a> {
    fn from(c: &'a Conversation) -> Self {
        ConversationOut {
            conversation_id: &c.id,
            kind: c.kind,
            name: c.name.as_deref(),
            creator: &c.creator,
            members: c.members.iter().map(|m| m.user_id.as_str()).collect(),
            admins: c
                .members
                .iter()
                .filter(|m| m.role == chat_store::Role::Admin)
                .map(|m| m.user_id.as_str())
                .collect(),
            created_at: rfc3339(c.created_at_ms),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptOut<'a> {
    #[serde(serialize_with = "id_string")]
    pub message_id: u64,
    pub conversation_id: &'a str,
    pub user_id: &'a str,
    pub status: ReceiptStatus,
    pub at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub up_to_message_id: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TypingOut<'a> {
    pub conversation_id: &'a str,
    pub user_id: &'a str,
    pub typing: bool,
    pub at: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PresenceOut<'a> {
    pub user_id: &'a str,
    pub status: &'static str,
    pub last_seen: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncOut {
    pub up_to_message_id: String,
    pub more: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryOut<'a> {
    pub conversation_id: &'a str,
    pub messages: Vec<MessageOut<'a>>,
    pub has_more: bool,
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn formats_utc_with_milliseconds() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(rfc3339(1_795_865_400_999), "2026-11-28T11:30:00.999Z");
    }
}
