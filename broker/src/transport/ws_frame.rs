//! The WebSocket framing (RFC 6455, section 5) the broker's `/ws` sessions speak: a reader that
//! turns a client's bytes into STOMP input as they arrive, and the encoding of the server's
//! frames.
//!
//! Why not tungstenite: its frame codec allocates its read buffer up front and keeps it for the
//! connection's life (plus a write buffer and two waker proxies), which was most of what an
//! idle WebSocket connection cost over a TCP one (docs/benchmarks.md, idle section). This
//! reader keeps no buffer: the transport reads into a stack buffer and the reader unmasks each
//! payload straight into the session's input, holding only the few bytes of a frame header
//! that arrived split (and the ≤ 125 bytes of a split control frame).
//!
//! STOMP needs no message boundaries (its own frames are delimited), so data frames are not
//! reassembled into messages: each payload is appended as it comes, fragments included. The
//! STOMP decoder bounds what accumulates; a single frame over `max_frame` is refused at its
//! header. A text message's payload is checked for UTF-8 as it comes, across frames and
//! reads ([`Utf8Stream`]), as RFC 6455 asks; binary messages carry any bytes.
//!
//! A violation ends the connection with the close code the RFC gives it (section 7.4.1): 1002
//! for a protocol error, 1007 for a text message that is not UTF-8, 1009 for a frame over the
//! limit, so a client's `onclose` can tell the three apart.

use std::fmt;

use bytes::{BufMut, BytesMut};

use super::utf8_stream::Utf8Stream;

/// A frame header is 2 to 14 bytes (client frames carry the 4-byte mask: 6 to 14).
const MAX_HEADER: usize = 14;
/// Control frames carry at most 125 bytes and are never fragmented.
const MAX_CONTROL: u64 = 125;

const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// Close codes (RFC 6455, section 7.4.1).
pub const CLOSE_PROTOCOL_ERROR: u16 = 1002;
pub const CLOSE_NOT_UTF8: u16 = 1007;
pub const CLOSE_TOO_BIG: u16 = 1009;

/// Why the client's frames were refused, with the close code that says so.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("WebSocket: {what}")]
pub struct Violation {
    pub code: u16,
    what: String,
}

impl Violation {
    fn new(code: u16, what: impl fmt::Display) -> Self {
        Self {
            code,
            what: what.to_string(),
        }
    }

    /// What went wrong, for the close frame's reason.
    pub fn reason(&self) -> &str {
        &self.what
    }

    fn protocol(what: &str) -> Self {
        Self::new(CLOSE_PROTOCOL_ERROR, what)
    }
}

/// What a call to [`FrameReader::feed`] found besides payload bytes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Fed {
    /// Payload bytes were appended to the STOMP input.
    pub data: bool,
    /// A ping or pong arrived: the peer is alive.
    pub liveness: bool,
    /// The peer sent its close frame: nothing more will come.
    pub close: bool,
}

/// The frame being read: its header so far, or how much of its payload is still to come.
#[derive(Debug)]
pub struct FrameReader {
    /// Largest payload one frame may declare.
    max_frame: u64,
    head: [u8; MAX_HEADER],
    head_len: u8,
    /// Opcode of the frame whose payload is being read.
    opcode: u8,
    /// Payload bytes of the current frame not yet read; meaningful once the header is whole.
    remaining: u64,
    mask: [u8; 4],
    /// Payload bytes of the current frame already unmasked (mod 4 picks the mask byte).
    mask_pos: u8,
    in_payload: bool,
    /// A text or binary message was started without FIN: continuation frames follow.
    fragmented: bool,
    /// The message being read is text: its payload is checked for UTF-8.
    text: bool,
    utf8: Utf8Stream,
    /// The payload of a control frame, collected whole (a pong answers a ping with it).
    /// Empty, with no allocation, unless a control frame is being read.
    control: Vec<u8>,
}

impl FrameReader {
    pub fn new(max_frame: usize) -> Self {
        Self {
            max_frame: max_frame as u64,
            head: [0; MAX_HEADER],
            head_len: 0,
            opcode: 0,
            remaining: 0,
            mask: [0; 4],
            mask_pos: 0,
            in_payload: false,
            fragmented: false,
            text: false,
            utf8: Utf8Stream::default(),
            control: Vec::new(),
        }
    }

    /// Takes `input` (bytes read from the client, in order): data payloads are unmasked onto
    /// `stomp`, a ping's pong is encoded onto `reply`. Everything in `input` is consumed; a
    /// partial header or control payload is kept for the next call.
    pub fn feed(
        &mut self,
        mut input: &[u8],
        stomp: &mut BytesMut,
        reply: &mut Vec<u8>,
    ) -> Result<Fed, Violation> {
        let mut fed = Fed::default();
        while !input.is_empty() && !fed.close {
            if !self.in_payload {
                input = self.read_header(input)?;
                if !self.in_payload {
                    break;
                }
            }
            let take = usize::try_from(self.remaining)
                .unwrap_or(usize::MAX)
                .min(input.len());
            let (payload, rest) = input.split_at(take);
            input = rest;
            self.remaining -= take as u64;
            if is_control(self.opcode) {
                let start = self.control.len();
                self.control.extend_from_slice(payload);
                unmask(&mut self.control[start..], self.mask, self.mask_pos);
            } else if !payload.is_empty() {
                let start = stomp.len();
                stomp.extend_from_slice(payload);
                unmask(&mut stomp[start..], self.mask, self.mask_pos);
                if self.text {
                    self.utf8.push(&stomp[start..]).map_err(not_utf8)?;
                }
                fed.data = true;
            }
            self.mask_pos = ((usize::from(self.mask_pos) + take) % 4) as u8;
            if self.remaining == 0 {
                self.frame_done(reply, &mut fed)?;
            }
        }
        Ok(fed)
    }

    /// Adds header bytes from `input` until the header is whole; returns what is left.
    fn read_header<'a>(&mut self, input: &'a [u8]) -> Result<&'a [u8], Violation> {
        let have = usize::from(self.head_len);
        let want = header_len(&self.head[..have]);
        let take = (want - have).min(input.len());
        self.head[have..have + take].copy_from_slice(&input[..take]);
        self.head_len += take as u8;
        let input = &input[take..];
        let have = usize::from(self.head_len);
        // The first two bytes say how long the header is: read the rest before parsing.
        if have < want || have < header_len(&self.head[..have]) {
            return if input.is_empty() {
                Ok(input)
            } else {
                self.read_header(input)
            };
        }
        self.start_frame()?;
        Ok(input)
    }

    /// The header is whole: check it and begin the payload.
    fn start_frame(&mut self) -> Result<(), Violation> {
        let h = &self.head[..usize::from(self.head_len)];
        let fin = h[0] & 0x80 != 0;
        if h[0] & 0x70 != 0 {
            return Err(Violation::protocol(
                "reserved bits set (no extension was negotiated)",
            ));
        }
        let opcode = h[0] & 0x0F;
        if h[1] & 0x80 == 0 {
            return Err(Violation::protocol("unmasked frame from a client"));
        }
        let (len, mask_at) = match h[1] & 0x7F {
            126 => (u64::from(u16::from_be_bytes([h[2], h[3]])), 4),
            127 => {
                let mut b = [0; 8];
                b.copy_from_slice(&h[2..10]);
                (u64::from_be_bytes(b), 10)
            }
            n => (u64::from(n), 2),
        };
        match opcode {
            OP_CONTINUATION if !self.fragmented => {
                return Err(Violation::protocol(
                    "continuation frame with no message to continue",
                ));
            }
            OP_TEXT | OP_BINARY if self.fragmented => {
                return Err(Violation::protocol(
                    "new message before the fragmented one ended",
                ));
            }
            OP_CONTINUATION | OP_TEXT | OP_BINARY => {
                if len > self.max_frame {
                    return Err(Violation::new(
                        CLOSE_TOO_BIG,
                        format_args!("frame of {len} bytes over the limit of {}", self.max_frame),
                    ));
                }
                if opcode != OP_CONTINUATION {
                    self.text = opcode == OP_TEXT;
                }
                self.fragmented = !fin;
            }
            OP_CLOSE | OP_PING | OP_PONG => {
                if !fin || len > MAX_CONTROL {
                    return Err(Violation::protocol("fragmented or oversized control frame"));
                }
            }
            _ => {
                return Err(Violation::protocol(&format!("unknown opcode {opcode:#x}")));
            }
        }
        self.mask.copy_from_slice(&h[mask_at..mask_at + 4]);
        self.opcode = opcode;
        self.remaining = len;
        self.mask_pos = 0;
        self.head_len = 0;
        self.in_payload = true;
        Ok(())
    }

    /// The current frame's payload is all read.
    fn frame_done(&mut self, reply: &mut Vec<u8>, fed: &mut Fed) -> Result<(), Violation> {
        self.in_payload = false;
        if !is_control(self.opcode) {
            // The message's last frame: a character cut short by its end is not UTF-8.
            if !self.fragmented && self.text {
                self.utf8.finish().map_err(not_utf8)?;
            }
            return Ok(());
        }
        match self.opcode {
            OP_PING => {
                encode_header(reply, OP_PONG, self.control.len());
                reply.extend_from_slice(&self.control);
                fed.liveness = true;
            }
            OP_PONG => fed.liveness = true,
            OP_CLOSE => fed.close = true,
            _ => {}
        }
        // A control frame's bytes go; the vector's allocation too (control frames are rare).
        self.control = Vec::new();
        Ok(())
    }
}

fn is_control(opcode: u8) -> bool {
    opcode & 0x8 != 0
}

/// How long the header is, given its first bytes (2 until the second byte is known).
fn header_len(head: &[u8]) -> usize {
    let Some(&second) = head.get(1) else {
        return 2;
    };
    let mask = if second & 0x80 != 0 { 4 } else { 0 };
    mask + match second & 0x7F {
        126 => 4,
        127 => 10,
        _ => 2,
    }
}

/// XORs `data` with the mask, starting at mask byte `pos`.
fn unmask(data: &mut [u8], mask: [u8; 4], pos: u8) {
    let mut mask = mask;
    mask.rotate_left(usize::from(pos));
    let mut chunks = data.chunks_exact_mut(4);
    for chunk in &mut chunks {
        for (b, m) in chunk.iter_mut().zip(mask) {
            *b ^= m;
        }
    }
    for (b, m) in chunks.into_remainder().iter_mut().zip(mask) {
        *b ^= m;
    }
}

fn not_utf8(_: super::utf8_stream::NotUtf8) -> Violation {
    Violation::new(CLOSE_NOT_UTF8, "text message is not UTF-8")
}

/// Appends an unmasked, final frame header for a payload of `len` bytes (servers do not mask).
pub fn encode_header(out: &mut impl BufMut, opcode: u8, len: usize) {
    out.put_u8(0x80 | opcode);
    if len < 126 {
        out.put_u8(len as u8);
    } else if let Ok(len) = u16::try_from(len) {
        out.put_u8(126);
        out.put_u16(len);
    } else {
        out.put_u8(127);
        out.put_u64(len as u64);
    }
}

/// Appends one server message holding `payload`: text when it is UTF-8, binary otherwise, so
/// binary STOMP bodies survive browsers (which close on a text message that is not UTF-8).
pub fn encode_message(out: &mut BytesMut, payload: &[u8]) {
    let opcode = if std::str::from_utf8(payload).is_ok() {
        OP_TEXT
    } else {
        OP_BINARY
    };
    out.reserve(MAX_HEADER + payload.len());
    encode_header(out, opcode, payload.len());
    out.extend_from_slice(payload);
}

/// The server's close frame (no status code).
pub const CLOSE_FRAME: [u8; 2] = [0x80 | OP_CLOSE, 0];

/// A close frame with a status code and the reason (cut to fit a control frame's 125 bytes).
pub fn encode_close(out: &mut Vec<u8>, code: u16, reason: &str) {
    let mut end = reason.len().min(MAX_CONTROL as usize - 2);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    encode_header(out, OP_CLOSE, 2 + end);
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(&reason.as_bytes()[..end]);
}

#[cfg(test)]
#[path = "ws_frame_tests.rs"]
mod tests;
