//! A positioned payload: what a shared topic history (`history.rs`) publishes and keeps, an
//! envelope behind one text line with its place in the history,
//! `#<epoch> <offset>\n<envelope>`. The first byte tells it from a plain envelope (whose
//! version byte is 1 or 2), so both travel on the same topic channels.

use std::sync::Arc;

use super::envelope::{Envelope, EnvelopeError};
use crate::message::Message;
use crate::router::position::Position;

/// The first byte of a positioned payload.
const POSITIONED: u8 = b'#';

/// A payload from a topic channel or the history: the envelope, positioned or not.
#[derive(Debug)]
pub struct Payload {
    pub envelope: Envelope,
    pub position: Option<Position>,
}

impl TryFrom<&[u8]> for Payload {
    type Error = EnvelopeError;

    fn try_from(bytes: &[u8]) -> Result<Self, Self::Error> {
        if bytes.first() != Some(&POSITIONED) {
            return Ok(Payload {
                envelope: Envelope::try_from(bytes)?,
                position: None,
            });
        }
        let end = bytes
            .iter()
            .position(|b| *b == b'\n')
            .ok_or(EnvelopeError::Truncated)?;
        let line = std::str::from_utf8(&bytes[1..end]).map_err(|_| EnvelopeError::NotUtf8)?;
        let (epoch, offset) = line.split_once(' ').ok_or(EnvelopeError::Truncated)?;
        let offset = offset.parse().map_err(|_| EnvelopeError::Truncated)?;
        Ok(Payload {
            envelope: Envelope::try_from(&bytes[end + 1..])?,
            position: Some(Position {
                epoch: epoch.to_string(),
                offset,
            }),
        })
    }
}

impl Payload {
    /// The message as subscribers get it: with the history's `epoch` and `offset`.
    pub fn message(&self) -> Arc<Message> {
        let message = self.envelope.message();
        match &self.position {
            Some(at) => Arc::new(message.positioned(&at.epoch, at.offset)),
            None => message,
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use bytes::Bytes;
    use stomp_codec::Headers;

    use super::*;
    use crate::cluster::envelope::Kind;

    /// A positioned payload of a small `/topic/t` message (for this and `history.rs`'s tests).
    pub(crate) fn positioned(epoch: &str, offset: u64) -> Vec<u8> {
        let message = Message::new(
            7,
            Arc::from("/topic/t"),
            &Headers::default(),
            Bytes::from_static(b"hi"),
        );
        let envelope = Envelope::of(1, Kind::Topic, "t", &message, false)
            .encode()
            .expect("encodes");
        let mut bytes = format!("#{epoch} {offset}\n").into_bytes();
        bytes.extend_from_slice(&envelope);
        bytes
    }

    #[test]
    fn a_positioned_payload_carries_epoch_and_offset_into_the_message() {
        let payload = Payload::try_from(&positioned("e", 5)[..]).expect("decodes");
        let message = payload.message();
        assert_eq!(message.headers.get("offset"), Some("5"));
        assert_eq!(message.headers.get("epoch"), Some("e"));
        assert!(Payload::try_from(&b"#e 5"[..]).is_err(), "no line end");
        assert!(Payload::try_from(&b"#e x\n"[..]).is_err(), "no offset");
    }
}
