//! [`StompCodec`]: the `tokio_util::codec` face of the scanner, parser and encoder, holding
//! the per-connection state (limits, negotiated version, scan progress).

use bytes::{Buf, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::encode::encode_frame;
use crate::error::CodecError;
use crate::escape::Escaping;
use crate::frame::{Frame, Item, Version};
use crate::limits::{Limits, PackedLimits};
use crate::parse;
use crate::scan::{Scanned, Scanner};

/// A STOMP codec for one connection.
///
/// Decoding yields [`Item::Frame`] for each frame and [`Item::HeartBeat`] for each EOL between
/// frames. Frame bodies are zero-copy slices of the read buffer. After an error the connection
/// should be closed: a limit error leaves the offending bytes in the buffer, a parse error
/// (bad header, escape, UTF-8) has already consumed its frame.
#[derive(Debug, Default)]
pub struct StompCodec {
    limits: PackedLimits,
    version: Version,
    scanner: Scanner,
}

impl StompCodec {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits: limits.into(),
            version: Version::default(),
            scanner: Scanner::default(),
        }
    }

    /// Sets the version that header escaping follows, in both directions; the broker calls it
    /// once CONNECT has negotiated one.
    pub fn set_version(&mut self, version: Version) {
        self.version = version;
    }

    pub fn version(&self) -> Version {
        self.version
    }

    pub fn limits(&self) -> Limits {
        self.limits.into()
    }
}

impl Decoder for StompCodec {
    type Item = Item;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Item>, CodecError> {
        match self.scanner.scan(src, &self.limits.into())? {
            Scanned::Incomplete => {
                if let Some(len) = self.scanner.expected_len() {
                    src.reserve(len.saturating_sub(src.len()));
                }
                Ok(None)
            }
            Scanned::HeartBeat { len } => {
                src.advance(len);
                Ok(Some(Item::HeartBeat))
            }
            Scanned::Frame(boundary) => {
                let bytes = src.split_to(boundary.frame_len).freeze();
                let escaping = Escaping::for_frame(boundary.command, self.version);
                let headers = parse::headers(
                    &bytes[boundary.headers_start..boundary.headers_end],
                    escaping,
                    boundary.header_count,
                )?;
                let body_end = boundary.body_start + boundary.body_len;
                Ok(Some(Item::Frame(Frame {
                    command: boundary.command,
                    headers,
                    body: bytes.slice(boundary.body_start..body_end),
                })))
            }
        }
    }
}

impl Encoder<&Frame> for StompCodec {
    type Error = CodecError;

    fn encode(&mut self, frame: &Frame, dst: &mut BytesMut) -> Result<(), CodecError> {
        encode_frame(frame, self.version, dst);
        Ok(())
    }
}

impl Encoder<Frame> for StompCodec {
    type Error = CodecError;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), CodecError> {
        encode_frame(&frame, self.version, dst);
        Ok(())
    }
}
