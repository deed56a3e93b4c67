//! The envelope: what one node PUBLISHes to Redis for the others, in a compact binary form.
//!
//! Binary rather than JSON because a message body is arbitrary bytes (JSON would need base64,
//! a third larger) and because every cross-node delivery pays for the encoding twice. All
//! integers are big-endian; every variable-length field is length-prefixed, so decoding never
//! scans and a truncated or hostile payload is a [`EnvelopeError`], never a panic.
//!
//! ```text
//! u8  version (2; 1 is still read: it has no publish time)
//! u8  kind     1 topic, 2 user, 3 room (topic for members only), 4 conversation changed,
//!              5 queue message (a stream entry)
//! u16 origin node id (receivers drop their own: no echo)
//! u64 message id
//! u64 published: microseconds since the Unix epoch when the envelope was built (version 2
//!     only), for the receiver's `stompbox_cluster_propagation_seconds`
//! u8  flags    bit 0: chat message (its ACK means DELIVERED), bit 1: droppable (typing)
//! str destination   (u16 length + UTF-8) as the MESSAGE frame shows it, e.g. /topic/a.b
//! str route key     topic name, or `<user>/<queue>` for the user table
//! u16 header count, then per header: str name, str value (u16 length, UTF-8)
//! u16 member count, then per member: str user   (a room copy: kind 3, or kind 2 on a room
//!     channel; 0 otherwise)
//! u32 body length, then the body
//! ```

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use stomp_codec::Headers;
use thiserror::Error;

use crate::message::Message;

const VERSION: u8 = 2;
/// The version before the publish time: still decoded, so envelopes already in Redis streams
/// (`/queue`) when a node is upgraded are delivered.
const VERSION_1: u8 = 1;
const FLAG_CHAT: u8 = 1;
const FLAG_DROPPABLE: u8 = 2;

/// What the receiving node does with an envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A `/topic` publish: fan out to matching subscriptions.
    Topic,
    /// A `/user/<u>/queue/<n>` delivery (plain SEND or a chat event).
    User,
    /// A chat room copy on `/topic/conversation.<id>`: only the listed members' sessions.
    Room,
    /// A conversation's membership changed: the body is its JSON snapshot.
    Conversation,
    /// A `/queue` message, an entry of the queue's Redis stream (not a channel).
    Queue,
}

impl Kind {
    fn code(self) -> u8 {
        match self {
            Kind::Topic => 1,
            Kind::User => 2,
            Kind::Room => 3,
            Kind::Conversation => 4,
            Kind::Queue => 5,
        }
    }

    fn from_code(code: u8) -> Result<Self, EnvelopeError> {
        Ok(match code {
            1 => Kind::Topic,
            2 => Kind::User,
            3 => Kind::Room,
            4 => Kind::Conversation,
            5 => Kind::Queue,
            other => return Err(EnvelopeError::UnknownKind(other)),
        })
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum EnvelopeError {
    #[error("envelope version {0} is not understood (this node speaks {VERSION})")]
    Version(u8),
    #[error("unknown envelope kind {0}")]
    UnknownKind(u8),
    #[error("envelope truncated")]
    Truncated,
    #[error("envelope field is not UTF-8")]
    NotUtf8,
    #[error("envelope field too long to encode")]
    TooLong,
    #[error("{0} trailing bytes after the envelope")]
    Trailing(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub kind: Kind,
    pub origin: u16,
    pub message_id: u64,
    /// Microseconds since the Unix epoch when built (`clock::now_us`); 0 when unknown (a
    /// version 1 envelope).
    pub published_us: u64,
    pub chat: bool,
    pub droppable: bool,
    pub destination: String,
    pub route: String,
    pub headers: Vec<(String, String)>,
    pub members: Vec<String>,
    pub body: Bytes,
}

impl Envelope {
    /// The envelope of a routed message.
    pub fn of(origin: u16, kind: Kind, route: &str, message: &Message, droppable: bool) -> Self {
        Envelope {
            kind,
            origin,
            message_id: message.id,
            published_us: crate::clock::now_us(),
            chat: message.app_ack,
            droppable,
            destination: message.destination.to_string(),
            route: route.to_string(),
            headers: message
                .headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            members: Vec::new(),
            body: message.body.clone(),
        }
    }

    /// The message it carries, as the receiving node delivers it.
    pub fn message(&self) -> Arc<Message> {
        let mut message = Message::new(
            self.message_id,
            Arc::from(self.destination.as_str()),
            &self.headers(),
            self.body.clone(),
        );
        message.app_ack = self.chat;
        Arc::new(message)
    }

    pub fn headers(&self) -> Headers {
        let mut headers = Headers::with_capacity(self.headers.len());
        for (name, value) in &self.headers {
            headers.push(name.as_str(), value.as_str());
        }
        headers
    }

    pub fn encode(&self) -> Result<Bytes, EnvelopeError> {
        let mut buf = BytesMut::with_capacity(64 + self.destination.len() + self.body.len());
        buf.put_u8(VERSION);
        buf.put_u8(self.kind.code());
        buf.put_u16(self.origin);
        buf.put_u64(self.message_id);
        buf.put_u64(self.published_us);
        let mut flags = 0;
        if self.chat {
            flags |= FLAG_CHAT;
        }
        if self.droppable {
            flags |= FLAG_DROPPABLE;
        }
        buf.put_u8(flags);
        put_str(&mut buf, &self.destination)?;
        put_str(&mut buf, &self.route)?;
        put_count(&mut buf, self.headers.len())?;
        for (name, value) in &self.headers {
            put_str(&mut buf, name)?;
            put_str(&mut buf, value)?;
        }
        put_count(&mut buf, self.members.len())?;
        for member in &self.members {
            put_str(&mut buf, member)?;
        }
        let body_len = u32::try_from(self.body.len()).map_err(|_| EnvelopeError::TooLong)?;
        buf.put_u32(body_len);
        buf.extend_from_slice(&self.body);
        Ok(buf.freeze())
    }
}

impl TryFrom<&[u8]> for Envelope {
    type Error = EnvelopeError;

    fn try_from(bytes: &[u8]) -> Result<Self, Self::Error> {
        let mut r = Reader(bytes);
        let version = r.u8()?;
        if version != VERSION && version != VERSION_1 {
            return Err(EnvelopeError::Version(version));
        }
        let kind = Kind::from_code(r.u8()?)?;
        let origin = r.u16()?;
        let message_id = r.u64()?;
        let published_us = if version == VERSION_1 { 0 } else { r.u64()? };
        let flags = r.u8()?;
        let destination = r.str()?;
        let route = r.str()?;
        let header_count = r.u16()?;
        let mut headers = Vec::with_capacity(usize::from(header_count).min(64));
        for _ in 0..header_count {
            headers.push((r.str()?, r.str()?));
        }
        let member_count = r.u16()?;
        let mut members = Vec::with_capacity(usize::from(member_count).min(1024));
        for _ in 0..member_count {
            members.push(r.str()?);
        }
        let body_len = r.u32()? as usize;
        let body = Bytes::copy_from_slice(r.take(body_len)?);
        if !r.0.is_empty() {
            return Err(EnvelopeError::Trailing(r.0.len()));
        }
        Ok(Envelope {
            kind,
            origin,
            message_id,
            published_us,
            chat: flags & FLAG_CHAT != 0,
            droppable: flags & FLAG_DROPPABLE != 0,
            destination,
            route,
            headers,
            members,
            body,
        })
    }
}

fn put_count(buf: &mut BytesMut, n: usize) -> Result<(), EnvelopeError> {
    buf.put_u16(u16::try_from(n).map_err(|_| EnvelopeError::TooLong)?);
    Ok(())
}

fn put_str(buf: &mut BytesMut, s: &str) -> Result<(), EnvelopeError> {
    put_count(buf, s.len())?;
    buf.extend_from_slice(s.as_bytes());
    Ok(())
}

/// A cursor over untrusted bytes: every read checks the length first.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], EnvelopeError> {
        if self.0.len() < n {
            return Err(EnvelopeError::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], EnvelopeError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, EnvelopeError> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, EnvelopeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, EnvelopeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, EnvelopeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn str(&mut self) -> Result<String, EnvelopeError> {
        let len = usize::from(self.u16()?);
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes)
            .map(str::to_string)
            .map_err(|_| EnvelopeError::NotUtf8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Envelope {
        Envelope {
            kind: Kind::Room,
            origin: 513,
            message_id: u64::MAX - 7,
            published_us: 1_765_000_000_123_456,
            chat: true,
            droppable: false,
            destination: "/topic/conversation.g:1".into(),
            route: "conversation.g:1".into(),
            headers: vec![("content-type".into(), "application/json".into())],
            members: vec!["ann".into(), "bob".into()],
            body: Bytes::from_static(b"{\"a\":1}\0binary"),
        }
    }

    #[test]
    fn envelope_round_trips() {
        let envelope = sample();
        let bytes = envelope.encode().expect("encodes");
        assert_eq!(Envelope::try_from(&bytes[..]), Ok(envelope));
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let bytes = sample().encode().expect("encodes");
        for cut in 0..bytes.len() {
            assert!(Envelope::try_from(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert_eq!(
            Envelope::try_from(&longer[..]),
            Err(EnvelopeError::Trailing(1))
        );
    }

    #[test]
    fn foreign_versions_and_kinds_are_refused() {
        let mut bytes = sample().encode().expect("encodes").to_vec();
        bytes[1] = 9;
        assert_eq!(
            Envelope::try_from(&bytes[..]),
            Err(EnvelopeError::UnknownKind(9))
        );
        bytes[0] = 3;
        assert_eq!(
            Envelope::try_from(&bytes[..]),
            Err(EnvelopeError::Version(3))
        );
    }

    /// A version 1 envelope (before the publish time), byte for byte as such a node wrote it,
    /// still decodes: its publish time reads as unknown.
    #[test]
    fn version_1_envelopes_still_decode() {
        let mut v1 = vec![1u8, 1, 0, 7];
        v1.extend_from_slice(&42u64.to_be_bytes());
        v1.push(FLAG_CHAT);
        for s in ["/topic/a", "a"] {
            v1.extend_from_slice(&(s.len() as u16).to_be_bytes());
            v1.extend_from_slice(s.as_bytes());
        }
        v1.extend_from_slice(&0u16.to_be_bytes());
        v1.extend_from_slice(&0u16.to_be_bytes());
        v1.extend_from_slice(&2u32.to_be_bytes());
        v1.extend_from_slice(b"hi");
        let envelope = Envelope::try_from(&v1[..]).expect("a version 1 envelope decodes");
        assert_eq!(envelope.origin, 7);
        assert_eq!(envelope.message_id, 42);
        assert_eq!(envelope.published_us, 0);
        assert!(envelope.chat);
        assert_eq!(envelope.destination, "/topic/a");
        assert_eq!(&envelope.body[..], b"hi");
    }
}
