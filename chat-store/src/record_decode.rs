//! Decoding a [`Record`] (`TryFrom<&[u8]>`) in one pass, for the sink (which decodes every
//! record it consumes). A module of its own beside `record`, which it depends on.
//!
//! serde's derive for [`Record`] (a version field flattened next to an internally tagged enum)
//! reads a payload twice (the version first, then the whole) and buffers every field of the
//! record into serde's `Content` tree twice — for the flatten, then for the tag — before it
//! builds the event: JSON decoding was about a quarter of the sink's own CPU in the sink
//! bench's profile (perf, 2026-12-08: `TaggedContentVisitor`, `ContentDeserializer`, the
//! allocations and frees of the trees). Here one struct holds every field of every kind, read
//! straight from the payload, and the event is built from it.
//!
//! The derive stays the reference: whatever this pass cannot decode (a malformed record, a
//! field of the wrong type, one missing) goes through it, so errors — and which payloads are
//! accepted at all — are exactly the derive's (`tests::one_pass_decodes_as_the_derive_does`).

use std::borrow::Cow;

use serde::Deserialize;

use crate::StoredMessage;
use crate::record::{DecodeError, Event, RECORD_VERSION, Record};

/// Every field of every kind of record; which are required depends on `type`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Flat<'a> {
    v: u32,
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    message_id: Option<u64>,
    conversation_id: Option<String>,
    sender_id: Option<String>,
    content: Option<String>,
    content_type: Option<String>,
    client_message_id: Option<String>,
    timestamp_ms: Option<u64>,
    user_id: Option<String>,
    message_ids: Option<Vec<u64>>,
    up_to: Option<u64>,
    at_ms: Option<u64>,
}

impl Flat<'_> {
    /// The event, or `None` when a field its kind requires is missing (or the kind unknown).
    fn event(self) -> Option<Event> {
        Some(match self.kind.as_ref() {
            "MESSAGE" => Event::Message(StoredMessage {
                message_id: self.message_id?,
                conversation_id: self.conversation_id?,
                sender_id: self.sender_id?,
                content: self.content?,
                content_type: self.content_type?,
                client_message_id: self.client_message_id,
                timestamp_ms: self.timestamp_ms?,
            }),
            "DELIVERED" => Event::Delivered {
                conversation_id: self.conversation_id?,
                user_id: self.user_id?,
                message_ids: self.message_ids?,
                at_ms: self.at_ms?,
            },
            "READ" => Event::Read {
                conversation_id: self.conversation_id?,
                user_id: self.user_id?,
                up_to: self.up_to?,
                at_ms: self.at_ms?,
            },
            "MARK" => Event::Mark { at_ms: self.at_ms? },
            _ => return None,
        })
    }
}

impl TryFrom<&[u8]> for Record {
    type Error = DecodeError;

    fn try_from(payload: &[u8]) -> Result<Self, Self::Error> {
        decode(payload)
    }
}

/// The record in `payload`: one pass when it decodes cleanly, else the derive's answer.
fn decode(payload: &[u8]) -> Result<Record, DecodeError> {
    if let Ok(flat) = serde_json::from_slice::<Flat<'_>>(payload) {
        let v = flat.v;
        if v > RECORD_VERSION {
            return Err(DecodeError::FutureVersion(v));
        }
        if let Some(event) = flat.event() {
            return Ok(Record { v, event });
        }
    }
    decode_with_derive(payload)
}

/// The derive's decoding: the version first (a newer record is refused as such, whatever else
/// it holds), then the whole record.
fn decode_with_derive(payload: &[u8]) -> Result<Record, DecodeError> {
    #[derive(Deserialize)]
    struct Version {
        v: u32,
    }
    let Version { v } = serde_json::from_slice(payload)?;
    if v > RECORD_VERSION {
        return Err(DecodeError::FutureVersion(v));
    }
    Ok(serde_json::from_slice(payload)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both decodings' answers, comparable: the record, or the kind of error.
    fn outcome(result: Result<Record, DecodeError>) -> Result<Record, String> {
        result.map_err(|e| match e {
            DecodeError::Malformed(_) => "malformed".to_owned(),
            DecodeError::FutureVersion(v) => format!("future {v}"),
        })
    }

    #[test]
    fn one_pass_decodes_as_the_derive_does() {
        let payloads = [
            // Every kind, as the producer writes them, and with the fields in another order.
            r#"{"v":1,"type":"MESSAGE","messageId":42,"conversationId":"g","senderId":"alice","content":"hi \"there\"\n","contentType":"text/plain","clientMessageId":"c1","timestampMs":1700000000000}"#,
            r#"{"timestampMs":5,"contentType":"t","content":"","senderId":"a","conversationId":"g","messageId":1,"type":"MESSAGE","v":1}"#,
            r#"{"v":1,"type":"MESSAGE","messageId":1,"conversationId":"g","senderId":"a","content":"x","contentType":"t","clientMessageId":null,"timestampMs":5}"#,
            r#"{"v":1,"type":"DELIVERED","conversationId":"g","userId":"bob","messageIds":[42,43],"atMs":5}"#,
            r#"{"v":1,"type":"READ","conversationId":"g","userId":"bob","upTo":43,"atMs":6}"#,
            r#"{"v":1,"type":"MARK","atMs":7}"#,
            r#"{"v":0,"type":"MARK","atMs":7}"#,
            // Unknown fields are ignored; a known field of another kind too, when it fits.
            r#"{"v":1,"type":"MARK","atMs":7,"later":{"x":[1,2]}}"#,
            r#"{"v":1,"type":"READ","conversationId":"g","userId":"bob","upTo":43,"atMs":6,"content":"x"}"#,
            // ... and when it does not (the one pass fails, the derive answers).
            r#"{"v":1,"type":"READ","conversationId":"g","userId":"bob","upTo":43,"atMs":6,"content":5}"#,
            // Missing, null or mistyped required fields; unknown kinds; versions.
            r#"{"v":1,"type":"MESSAGE","messageId":1,"conversationId":"g","senderId":"a","contentType":"t","timestampMs":5}"#,
            r#"{"v":1,"type":"MESSAGE","messageId":1,"conversationId":"g","senderId":"a","content":null,"contentType":"t","timestampMs":5}"#,
            r#"{"v":1,"type":"MESSAGE","messageId":-1,"conversationId":"g","senderId":"a","content":"x","contentType":"t","timestampMs":5}"#,
            r#"{"v":1,"type":"READ","conversationId":"g","userId":"bob","atMs":6}"#,
            r#"{"v":1,"type":"SHOUT"}"#,
            r#"{"v":1}"#,
            r#"{"type":"MARK","atMs":7}"#,
            r#"{"v":2,"type":"READ"}"#,
            r#"{"v":2,"type":"MARK","atMs":7}"#,
            r#"{"v":"1","type":"MARK","atMs":7}"#,
            r#"{"v":1,"v":1,"type":"MARK","atMs":7}"#,
            r#"{"v":1,"type":"MARK","atMs":7} trailing"#,
            r#"[1,"MARK",7]"#,
            "not json",
            "",
        ];
        for payload in payloads {
            assert_eq!(
                outcome(decode(payload.as_bytes())),
                outcome(decode_with_derive(payload.as_bytes())),
                "{payload}"
            );
        }
    }
}
