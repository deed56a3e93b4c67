//! A message accepted from a SEND, shared (`Arc`) by every delivery of it, and its wire form.
//!
//! Fan-out to many subscribers must not re-escape the same headers for each one: the part of a
//! MESSAGE frame that is the same for every subscriber (application headers, content-length,
//! body, NUL) is encoded once per protocol version and cached.

use std::sync::Arc;
use std::sync::OnceLock;

use bytes::{BufMut, Bytes, BytesMut};
use stomp_codec::{Headers, Version, encode_header};

/// Headers of a SEND that concern the hop from client to broker, never forwarded.
pub(crate) const TRANSPORT_HEADERS: &[&str] = &[
    "destination",
    "receipt",
    "transaction",
    "content-length",
    "message-id",
    "subscription",
    "ack",
    "redelivered",
];

/// The header naming the principal whose SEND produced a message, set by the broker on every
/// client SEND (a client-supplied value is replaced), so a subscriber can trust who sent it.
/// The name is RabbitMQ's validated `user-id`; messages the application publishes (the chat's)
/// carry none.
pub const SENDER_HEADER: &str = "user-id";

/// The position of a MESSAGE in its topic's history (see `router/history.rs`): 1, 2, 3, ...
/// without gaps within one epoch.
pub const OFFSET_HEADER: &str = "offset";

/// The history a MESSAGE's `offset` counts in; a new one (a restart, a history dropped when
/// idle) starts counting again, so an offset means nothing under another epoch.
pub const EPOCH_HEADER: &str = "epoch";

/// Bytes `headers` hold as `name:value` lines: what a buffered frame's headers cost.
pub fn header_bytes(headers: &Headers) -> usize {
    headers.iter().map(|(n, v)| n.len() + v.len() + 2).sum()
}

#[derive(Debug)]
pub struct Message {
    pub id: u64,
    /// The destination as sent (e.g. `/topic/chat.room1`).
    pub destination: Arc<str>,
    /// Application headers (content-type included), transport headers removed.
    pub headers: Headers,
    pub body: Bytes,
    /// Published by the application, which hears of its ACK or NACK
    /// ([`Application::settled`](crate::app::Application::settled)): the chat counts a
    /// recipient's ACK of a chat message as DELIVERED.
    pub app_ack: bool,
    /// When this node accepted it (or received it from a peer): the start of its delivery
    /// latency (`stompbox_delivery_latency_seconds`).
    pub accepted: std::time::Instant,
    tails: [OnceLock<Bytes>; 3],
}

impl Message {
    pub fn new(id: u64, destination: Arc<str>, sent: &Headers, body: Bytes) -> Self {
        let mut headers = Headers::with_capacity(sent.len());
        for (name, value) in sent.iter() {
            // Repeated entries pass through in order, as other brokers forward them: the first
            // stays the value (STOMP 1.2), the later ones are the header's history.
            if !TRANSPORT_HEADERS.contains(&name) {
                headers.push(name, value);
            }
        }
        Self {
            id,
            destination,
            headers,
            body,
            app_ack: false,
            accepted: std::time::Instant::now(),
            tails: Default::default(),
        }
    }

    /// This message as a topic with history publishes it: the same, with the broker's
    /// `offset` and `epoch` headers (a sender's own values are replaced, so a subscriber can
    /// trust them). Built once per publish, shared by every subscriber and the history.
    pub fn positioned(&self, epoch: &str, offset: u64) -> Self {
        let mut headers = self.headers.clone();
        headers.set(OFFSET_HEADER, offset.to_string());
        headers.set(EPOCH_HEADER, epoch);
        Self {
            id: self.id,
            destination: Arc::clone(&self.destination),
            headers,
            body: self.body.clone(),
            app_ack: self.app_ack,
            accepted: self.accepted,
            tails: Default::default(),
        }
    }

    /// Approximate bytes this message costs in an outbound queue.
    pub fn weight(&self) -> usize {
        256 + self.body.len() + header_bytes(&self.headers)
    }

    /// The subscriber-independent end of the MESSAGE frame for `version`, encoded once.
    pub fn tail(&self, version: Version) -> &Bytes {
        let slot = match version {
            Version::V1_0 => &self.tails[0],
            Version::V1_1 => &self.tails[1],
            Version::V1_2 => &self.tails[2],
        };
        slot.get_or_init(|| {
            let mut buf = BytesMut::with_capacity(self.weight());
            for (name, value) in self.headers.iter() {
                encode_header(name, value, version, &mut buf);
            }
            if !self.body.is_empty() {
                encode_header(
                    "content-length",
                    &self.body.len().to_string(),
                    version,
                    &mut buf,
                );
            }
            buf.put_u8(b'\n');
            buf.extend_from_slice(&self.body);
            buf.put_u8(0);
            buf.freeze()
        })
    }
}

/// Where a delivery goes within the receiving session.
#[derive(Debug, Clone)]
pub enum Target {
    /// A subscription, by its client-chosen id.
    Subscription(Arc<str>),
    /// A `/temp-queue/<name>` reply: delivered without a SUBSCRIBE.
    TempQueue(Arc<str>),
    /// This session's subscriptions to `/user/queue/<name>` (a reply to one session, such as
    /// a sync replay, rather than an event for all of a user's sessions).
    User(Arc<str>),
}

/// One message on its way to one session.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub target: Target,
    pub message: Arc<Message>,
    pub redelivered: bool,
    /// Set when the message came from a `/queue`, which must hear about its ACK/NACK.
    pub queue: Option<Arc<dyn ReturnAddress>>,
}

/// Where a delivery reports back: a `/queue` must hear that its message was consumed, or take
/// it back for redelivery. A trait defined here, beside the delivery, so that deliveries,
/// outboxes and sessions never name the router's queue type (the queue implements it).
pub trait ReturnAddress: Send + Sync + std::fmt::Debug {
    /// These messages are consumed for good (ACKed, or written to an auto-ack subscriber).
    fn consumed(&self, ids: &[u64]);

    /// These messages never reached a consumer (unsubscribed while in flight, session gone):
    /// back for redelivery, in order, each with its `redelivered` flag.
    fn give_back(self: Arc<Self>, messages: Vec<(Arc<Message>, bool)>);
}

/// The subscriber-specific head of a MESSAGE frame.
#[derive(Debug)]
pub struct MessageHead<'a> {
    pub subscription: &'a str,
    pub destination: &'a str,
    pub message_id: u64,
    /// The `ack` header (1.2 client/client-individual subscriptions).
    pub ack: Option<u64>,
    pub redelivered: bool,
}

impl MessageHead<'_> {
    /// Writes this head, then the message's shared tail: one whole MESSAGE frame.
    pub fn encode(&self, message: &Message, version: Version, dst: &mut BytesMut) {
        let tail = message.tail(version);
        dst.reserve(64 + self.subscription.len() + self.destination.len() + tail.len());
        dst.extend_from_slice(b"MESSAGE\n");
        encode_header("subscription", self.subscription, version, dst);
        put_number(dst, b"message-id:", self.message_id);
        encode_header("destination", self.destination, version, dst);
        if let Some(ack) = self.ack {
            put_number(dst, b"ack:", ack);
        }
        if self.redelivered {
            dst.extend_from_slice(b"redelivered:true\n");
        }
        dst.extend_from_slice(tail);
    }
}

/// Writes `name` (with its colon), `n` in decimal and EOL, without allocating: these headers are
/// written once per delivery, and digits never need escaping.
fn put_number(dst: &mut BytesMut, name: &[u8], mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    dst.extend_from_slice(name);
    dst.extend_from_slice(&digits[at..]);
    dst.put_u8(b'\n');
}

#[cfg(test)]
mod tests {
    use super::put_number;
    use bytes::BytesMut;

    #[test]
    fn numbers_are_written_in_decimal() {
        for n in [0, 7, 10, 1_234_567_890, u64::MAX] {
            let mut buf = BytesMut::new();
            put_number(&mut buf, b"id:", n);
            assert_eq!(&buf[..], format!("id:{n}\n").as_bytes());
        }
    }
}
