//! A message accepted from a SEND, shared (`Arc`) by every delivery of it, and its wire form.
//!
//! Fan-out to many subscribers must not re-escape the same headers for each one: the part of a
//! MESSAGE frame that is the same for every subscriber (application headers, content-length,
//! body, NUL) is encoded once per protocol version and cached.

use std::sync::Arc;
use std::sync::OnceLock;

use bytes::{BufMut, Bytes, BytesMut};
use stomp_codec::{Headers, Version, encode_header};

use crate::subscription_id::SubscriptionId;

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
    tails: [OnceLock<Tail>; 3],
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

    /// The subscriber-independent part of the MESSAGE frame for `version`, encoded once.
    fn tail(&self, version: Version) -> &Tail {
        let slot = match version {
            Version::V1_0 => &self.tails[0],
            Version::V1_1 => &self.tails[1],
            Version::V1_2 => &self.tails[2],
        };
        slot.get_or_init(|| {
            let mut buf = BytesMut::with_capacity(self.weight());
            put_number(&mut buf, b"message-id:", self.id);
            encode_header("destination", &self.destination, version, &mut buf);
            let rest = buf.len();
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
            Tail {
                bytes: buf.freeze(),
                rest,
            }
        })
    }
}

/// The end of a MESSAGE frame that every subscriber of one protocol version gets alike:
/// `message-id` and `destination` (the message's own), then the application headers,
/// `content-length`, the blank line, body and NUL. A delivery copies it whole, or splits it at
/// `rest` to put its `ack` header (or its own destination) in the place the full encoding has
/// it.
#[derive(Debug)]
struct Tail {
    bytes: Bytes,
    /// Offset where the application headers start (after `message-id` and `destination`).
    rest: usize,
}

/// Where a delivery goes within the receiving session.
#[derive(Debug, Clone)]
pub enum Target {
    /// A subscription, by its client-chosen id (inline when short: no shared reference count
    /// per delivery, see `subscription_id.rs`).
    Subscription(SubscriptionId),
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

impl Delivery {
    /// `message` on its way to the subscription `id`, as a topic fan-out sends it.
    pub fn to_subscription(id: &SubscriptionId, message: &Arc<Message>) -> Self {
        Self {
            target: Target::Subscription(id.clone()),
            message: Arc::clone(message),
            redelivered: false,
            queue: None,
        }
    }
}

/// Consecutive messages of one publisher to one topic (the SENDs of one socket read), fanned
/// out together: each subscription's outbox takes the run with one push, one lock and one
/// shared reference, rather than one of each per message (`router/fanout.rs`).
#[derive(Debug)]
pub struct Run {
    pub messages: Vec<Arc<Message>>,
    /// The sum of the messages' [`Message::weight`]s: what the run costs an outbox.
    pub weight: usize,
}

impl Run {
    pub fn new(messages: Vec<Arc<Message>>) -> Self {
        let weight = messages.iter().map(|m| m.weight()).sum();
        Self { messages, weight }
    }
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
    /// The MESSAGE `destination` when it is not the message's own (`/user/queue/x`, a
    /// temp-queue reply).
    pub destination: Option<&'a str>,
    /// The `ack` header (1.2 client/client-individual subscriptions).
    pub ack: Option<u64>,
    pub redelivered: bool,
}

impl MessageHead<'_> {
    /// Writes this head around the message's shared tail: one whole MESSAGE frame, byte for byte
    /// what `encode_frame` makes of the frame with its headers in this order: `subscription`,
    /// `message-id`, `destination`, `ack`, `redelivered`, the message's own headers,
    /// `content-length`.
    pub fn encode(&self, message: &Message, version: Version, dst: &mut BytesMut) {
        let tail = message.tail(version);
        let own = self.destination.map_or(0, str::len);
        dst.reserve(64 + self.subscription.len() + own + tail.bytes.len());
        dst.extend_from_slice(b"MESSAGE\n");
        encode_header("subscription", self.subscription, version, dst);
        if let Some(destination) = self.destination {
            put_number(dst, b"message-id:", message.id);
            encode_header("destination", destination, version, dst);
        } else if self.ack.is_none() && !self.redelivered {
            // The common case of a topic fan-out: everything after `subscription` is shared.
            dst.extend_from_slice(&tail.bytes);
            return;
        } else {
            dst.extend_from_slice(&tail.bytes[..tail.rest]);
        }
        if let Some(ack) = self.ack {
            put_number(dst, b"ack:", ack);
        }
        if self.redelivered {
            dst.extend_from_slice(b"redelivered:true\n");
        }
        dst.extend_from_slice(&tail.bytes[tail.rest..]);
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
    use super::{Message, MessageHead, put_number};
    use bytes::{Bytes, BytesMut};
    use proptest::prelude::*;
    use std::sync::Arc;
    use stomp_codec::{Command, Frame, Headers, Item, Limits, StompCodec, Version, encode_frame};
    use tokio_util::codec::Decoder;

    #[test]
    fn numbers_are_written_in_decimal() {
        for n in [0, 7, 10, 1_234_567_890, u64::MAX] {
            let mut buf = BytesMut::new();
            put_number(&mut buf, b"id:", n);
            assert_eq!(&buf[..], format!("id:{n}\n").as_bytes());
        }
    }

    /// Text with the octets escaping is about mixed in, long enough at times to take the
    /// vectorised escape check as well as the short one.
    fn text() -> impl Strategy<Value = String> {
        let char = prop_oneof![
            3 => any::<char>(),
            2 => prop::sample::select(vec![':', '\n', '\r', '\\', 'c', 'n', 'é', '/', '.']),
        ];
        prop::collection::vec(char, 0..40).prop_map(String::from_iter)
    }

    fn version() -> impl Strategy<Value = Version> {
        prop::sample::select(vec![Version::V1_0, Version::V1_1, Version::V1_2])
    }

    proptest! {
        /// A delivery's MESSAGE is the subscriber's head around the tail every subscriber
        /// shares, split where the subscriber's `ack` (or its own destination) goes. Whatever
        /// the headers hold, the result must equal the frame encoded whole, for every version,
        /// and on the first encoding (which builds the cached tail) and the next (which reuses
        /// it).
        #[test]
        fn patched_message_equals_the_frame_encoded_whole(
            subscription in text(),
            destination in text(),
            own_destination in prop::option::of(text()),
            sent in prop::collection::vec((text(), text()), 0..4),
            body in prop::collection::vec(any::<u8>(), 0..64),
            id in any::<u64>(),
            ack in prop::option::of(any::<u64>()),
            redelivered in any::<bool>(),
            version in version(),
        ) {
            let mut headers = Headers::new();
            for (name, value) in &sent {
                // A header needs a name to be read back (the codec refuses an empty one).
                headers.push(format!("x{name}"), value.as_str());
            }
            let message = Message::new(id, Arc::from(destination.as_str()), &headers, Bytes::from(body.clone()));
            let head = MessageHead {
                subscription: &subscription,
                destination: own_destination.as_deref(),
                ack,
                redelivered,
            };
            let shown = own_destination.as_deref().unwrap_or(&destination);
            let mut whole = Frame::new(Command::Message)
                .header("subscription", subscription.as_str())
                .header("message-id", id.to_string())
                .header("destination", shown);
            if let Some(ack) = ack {
                whole.headers.push("ack", ack.to_string());
            }
            if redelivered {
                whole.headers.push("redelivered", "true");
            }
            for (name, value) in message.headers.iter() {
                whole.headers.push(name, value);
            }
            let whole = whole.with_body(body);
            let mut expected = BytesMut::new();
            encode_frame(&whole, version, &mut expected);
            for _ in 0..2 {
                let mut patched = BytesMut::new();
                head.encode(&message, version, &mut patched);
                prop_assert_eq!(&patched[..], &expected[..]);
            }
            if version == Version::V1_2 {
                // And a 1.2 client reads back what was meant, escapes and all.
                let mut codec = StompCodec::new(Limits::default());
                codec.set_version(version);
                let mut wire = expected;
                let Ok(Some(Item::Frame(decoded))) = codec.decode(&mut wire) else {
                    panic!("the MESSAGE decodes");
                };
                prop_assert_eq!(decoded.headers.get("subscription"), Some(subscription.as_str()));
                prop_assert_eq!(decoded.headers.get("destination"), Some(shown));
                let ack = ack.map(|a| a.to_string());
                prop_assert_eq!(decoded.headers.get("ack"), ack.as_deref());
                prop_assert_eq!(&decoded.body[..], &whole.body[..]);
            }
        }
    }
}
