//! A `chat.send`'s reply for the HTTP API ([`Sent`]): what the operation knows, made JSON only
//! when an HTTP caller is the one answered.

use serde_json::json;

use crate::chat::model::rfc3339;

/// A send's reply for the HTTP API, turned into JSON only when an HTTP caller asked
/// ([`Sent::into_json`]): a STOMP sender's answer is its RECEIPT, and building the JSON for
/// every send cost a dozen allocations and a date formatting per message for nothing.
#[derive(Debug)]
pub struct Sent {
    pub message_id: u64,
    pub conversation_id: String,
    pub timestamp_ms: u64,
    /// A retry answered with the original.
    pub duplicate: bool,
}

impl Sent {
    pub fn into_json(self) -> serde_json::Value {
        let mut reply = json!({
            "messageId": self.message_id.to_string(),
            "conversationId": self.conversation_id,
            "timestamp": rfc3339(self.timestamp_ms),
        });
        if self.duplicate {
            reply["duplicate"] = true.into();
        }
        reply
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_send_reply_is_the_json_the_http_api_documents() {
        let sent = Sent {
            message_id: 42,
            conversation_id: "c1".into(),
            timestamp_ms: 1_700_000_000_123,
            duplicate: false,
        };
        assert_eq!(
            sent.into_json(),
            json!({
                "messageId": "42",
                "conversationId": "c1",
                "timestamp": "2023-11-14T22:13:20.123Z",
            })
        );
        let retry = Sent {
            message_id: 42,
            conversation_id: "c1".into(),
            timestamp_ms: 1_700_000_000_123,
            duplicate: true,
        };
        assert_eq!(retry.into_json()["duplicate"], json!(true));
    }
}
