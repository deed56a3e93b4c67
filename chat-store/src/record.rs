//! What goes through Kafka: one record per accepted message or status change, JSON with a
//! version tag, keyed by conversation id so a conversation's records keep their order within
//! one partition (a message always precedes the statuses that name it).
//!
//! Messages and statuses share one topic on purpose: the sink must see a message before its
//! DELIVERED/READ, and Kafka orders records only within a partition of one topic.

use serde::{Deserialize, Serialize};

use crate::{ConversationId, StoredMessage, UserId};

/// The record format version written by this build; a sink refuses (dead-letters) newer ones.
pub const RECORD_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Event {
    /// A message the broker accepted (the sender's RECEIPT waits for Kafka's ack of this).
    Message(StoredMessage),
    /// `user_id` received these messages of `conversation_id`: SENT → DELIVERED only.
    #[serde(rename_all = "camelCase")]
    Delivered {
        conversation_id: ConversationId,
        user_id: UserId,
        message_ids: Vec<u64>,
        at_ms: u64,
    },
    /// `user_id`'s READ watermark in `conversation_id` moved to `up_to` (only forward).
    #[serde(rename_all = "camelCase")]
    Read {
        conversation_id: ConversationId,
        user_id: UserId,
        up_to: u64,
        at_ms: u64,
    },
    /// A sync barrier's marker, produced to one partition: the sink applies nothing for it,
    /// but once it is past the marker's offset every record acknowledged in that partition
    /// before the marker was sent is in PostgreSQL (docs/persistence.md, "Gap-free sync").
    #[serde(rename_all = "camelCase")]
    Mark { at_ms: u64 },
}

impl Event {
    /// The partitioning key.
    pub fn conversation_id(&self) -> &str {
        match self {
            Event::Message(m) => &m.conversation_id,
            Event::Delivered {
                conversation_id, ..
            }
            | Event::Read {
                conversation_id, ..
            } => conversation_id,
            Event::Mark { .. } => "",
        }
    }
}

/// The envelope on the wire: `{"v":1,"type":"MESSAGE",...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub v: u32,
    #[serde(flatten)]
    pub event: Event,
}

/// Why a payload is not a record this build can apply: permanent, so the record is
/// dead-lettered rather than retried.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("not a record: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error("record version {0} is newer than this build's {RECORD_VERSION}")]
    FutureVersion(u32),
}

impl From<Event> for Record {
    fn from(event: Event) -> Self {
        Record {
            v: RECORD_VERSION,
            event,
        }
    }
}

/// The envelope borrowed, for encoding an event without moving or cloning it.
#[derive(Serialize)]
struct Envelope<'a> {
    v: u32,
    #[serde(flatten)]
    event: &'a Event,
}

impl Record {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        Record::encode(self.v, &self.event, &mut bytes);
        bytes
    }

    /// Appends the record `{"v":v,…event}` to `out` (the producer's reused buffer).
    pub fn encode(v: u32, event: &Event, out: &mut Vec<u8>) {
        // Serializing plain data with string keys into a Vec cannot fail.
        let _ = serde_json::to_writer(out, &Envelope { v, event });
    }
}

// `impl TryFrom<&[u8]> for Record` (decoding) is in `record_decode`.

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> StoredMessage {
        StoredMessage {
            message_id: 42,
            conversation_id: "g".into(),
            sender_id: "alice".into(),
            content: "hi".into(),
            content_type: "text/plain".into(),
            client_message_id: Some("c1".into()),
            timestamp_ms: 1_700_000_000_000,
        }
    }

    #[test]
    fn records_round_trip_through_bytes() {
        for event in [
            Event::Message(message()),
            Event::Delivered {
                conversation_id: "g".into(),
                user_id: "bob".into(),
                message_ids: vec![42, 43],
                at_ms: 5,
            },
            Event::Read {
                conversation_id: "g".into(),
                user_id: "bob".into(),
                up_to: 43,
                at_ms: 6,
            },
        ] {
            let record = Record::from(event);
            let bytes = record.to_bytes();
            assert_eq!(Record::try_from(bytes.as_slice()).expect("decode"), record);
        }
    }

    #[test]
    fn wire_form_is_versioned_and_tagged() {
        let bytes = Record::from(Event::Read {
            conversation_id: "g".into(),
            user_id: "bob".into(),
            up_to: 7,
            at_ms: 8,
        })
        .to_bytes();
        assert_eq!(
            String::from_utf8(bytes).expect("utf-8"),
            r#"{"v":1,"type":"READ","conversationId":"g","userId":"bob","upTo":7,"atMs":8}"#
        );
    }

    #[test]
    fn garbage_and_future_versions_are_refused() {
        assert!(matches!(
            Record::try_from(&b"not json"[..]),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            Record::try_from(&br#"{"v":2,"type":"READ"}"#[..]),
            Err(DecodeError::FutureVersion(2))
        ));
        assert!(matches!(
            Record::try_from(&br#"{"v":1,"type":"SHOUT"}"#[..]),
            Err(DecodeError::Malformed(_))
        ));
    }
}
