//! Frame encoding: the bytes a frame becomes on the wire for a given protocol version.
//!
//! 1.0 has no escaping at all: a name containing ':' or LF, or a value containing LF, goes on
//! the wire raw and will not decode back to the same header. Callers speaking 1.0 must not put
//! such text in headers.

use bytes::{BufMut, BytesMut};

use crate::escape::Escaping;
use crate::frame::{Frame, Version};

/// A heart-beat as this codec sends it: a single LF (STOMP 1.2 "Heart-beating").
pub const HEARTBEAT: &[u8] = b"\n";

/// Octets of frame overhead beyond command, headers and body: the EOLs, the blank line, the
/// NUL and a generated `content-length` header, rounded up so one reserve is enough.
const FRAME_OVERHEAD: usize = 48;

/// Appends `frame` to `dst`.
///
/// Headers are escaped per `version` unless the command is CONNECT, STOMP or CONNECTED. A
/// non-empty body without a `content-length` header gets one, appended after the others, so a
/// body may contain NULs. An existing `content-length` is trusted as given.
pub fn encode_frame(frame: &Frame, version: Version, dst: &mut BytesMut) {
    let escaping = Escaping::for_frame(frame.command, version);
    let headers_len: usize = frame
        .headers
        .iter()
        .map(|(name, value)| name.len() + value.len() + 2)
        .sum();
    dst.reserve(frame.command.as_str().len() + headers_len + frame.body.len() + FRAME_OVERHEAD);

    dst.put_slice(frame.command.as_str().as_bytes());
    dst.put_u8(b'\n');
    for (name, value) in frame.headers.iter() {
        write_header(name, value, escaping, dst);
    }
    if !frame.body.is_empty() && !frame.headers.contains("content-length") {
        dst.put_slice(b"content-length:");
        put_decimal(frame.body.len(), dst);
        dst.put_u8(b'\n');
    }
    dst.put_u8(b'\n');
    dst.put_slice(&frame.body);
    dst.put_u8(0);
}

/// Appends one `name:value\n` header line, escaped per `version` as for a MESSAGE frame (the
/// broker pre-encodes header tails shared by every copy of a message with it).
pub fn encode_header(name: &str, value: &str, version: Version, dst: &mut BytesMut) {
    write_header(name, value, Escaping::for_version(version), dst);
}

fn write_header(name: &str, value: &str, escaping: Escaping, dst: &mut BytesMut) {
    escaping.escape_into(name, dst);
    dst.put_u8(b':');
    escaping.escape_into(value, dst);
    dst.put_u8(b'\n');
}

/// Decimal digits of a usize: at most 20.
const MAX_DECIMAL_DIGITS: usize = 20;

/// Writes `n` in decimal without going through `fmt`.
fn put_decimal(mut n: usize, dst: &mut BytesMut) {
    let mut digits = [0u8; MAX_DECIMAL_DIGITS];
    let mut start = MAX_DECIMAL_DIGITS;
    loop {
        start -= 1;
        // `n % 10` is below 10, so the cast cannot truncate.
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    dst.put_slice(&digits[start..]);
}
