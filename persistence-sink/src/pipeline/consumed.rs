//! One consumed record: where it came from (offset commit, progress), when it was produced (the
//! persistence lag), what it decoded to, and the raw bytes (for the dead-letter topic).

use chat_store::record::{Event, Record};
use rdkafka::Message;
use rdkafka::message::BorrowedMessage;

#[derive(Debug)]
pub(crate) struct Consumed {
    pub partition: i32,
    pub offset: i64,
    /// Kafka's record timestamp (the producer's send time).
    pub timestamp_ms: Option<i64>,
    pub payload: Vec<u8>,
    pub key: Option<Vec<u8>>,
    pub decoded: Result<Event, String>,
}

impl From<&BorrowedMessage<'_>> for Consumed {
    fn from(msg: &BorrowedMessage<'_>) -> Self {
        let payload = msg.payload().unwrap_or_default().to_vec();
        let decoded = Record::try_from(payload.as_slice())
            .map(|r| r.event)
            .map_err(|e| e.to_string());
        Consumed {
            partition: msg.partition(),
            offset: msg.offset(),
            timestamp_ms: msg.timestamp().to_millis(),
            key: msg.key().map(<[u8]>::to_vec),
            payload,
            decoded,
        }
    }
}
