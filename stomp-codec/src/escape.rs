//! Header value encoding (STOMP 1.2 "Value Encoding"): which octets each version escapes, and
//! the two directions of that mapping.
//!
//! | version | escaped on the wire                        |
//! |---------|--------------------------------------------|
//! | 1.2     | `\r` `\n` `\c` (colon) `\\`                |
//! | 1.1     | `\n` `\c` `\\` (a raw CR stays raw)        |
//! | 1.0     | nothing: names and values go on the wire raw |
//!
//! CONNECT, STOMP and CONNECTED frames are never escaped in any version.

use bytes::{BufMut, BytesMut};

use crate::error::CodecError;
use crate::frame::{Command, Version};

/// Which escape sequences apply to one frame's header names and values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Escaping {
    /// STOMP 1.0, and CONNECT/STOMP/CONNECTED in every version.
    Raw,
    /// STOMP 1.1: `\n`, `\c`, `\\`.
    WithoutCr,
    /// STOMP 1.2: `\r`, `\n`, `\c`, `\\`.
    Full,
}

impl Escaping {
    pub(crate) fn for_version(version: Version) -> Self {
        match version {
            Version::V1_0 => Escaping::Raw,
            Version::V1_1 => Escaping::WithoutCr,
            Version::V1_2 => Escaping::Full,
        }
    }

    pub(crate) fn for_frame(command: Command, version: Version) -> Self {
        if command.escapes_headers() {
            Self::for_version(version)
        } else {
            Escaping::Raw
        }
    }

    /// Decodes one raw header name or value. UTF-8 is checked on the raw octets: escapes are
    /// ASCII, so raw text is valid exactly when the decoded text is.
    pub(crate) fn unescape(self, raw: &[u8]) -> Result<String, CodecError> {
        let text = std::str::from_utf8(raw).map_err(|_| CodecError::InvalidUtf8)?;
        if self == Escaping::Raw || !raw.contains(&b'\\') {
            return Ok(text.to_owned());
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find('\\') {
            out.push_str(&rest[..at]);
            let mut after = rest[at + 1..].chars();
            let decoded = match after.next() {
                Some('n') => '\n',
                Some('c') => ':',
                Some('\\') => '\\',
                Some('r') if self == Escaping::Full => '\r',
                Some(other) => return Err(CodecError::InvalidEscape(other)),
                // A backslash ending the text escapes nothing; NUL stands for "no character".
                None => return Err(CodecError::InvalidEscape('\0')),
            };
            out.push(decoded);
            rest = after.as_str();
        }
        out.push_str(rest);
        Ok(out)
    }

    /// Whether `bytes` hold an octet this escaping replaces. Most values (ids, destinations,
    /// content types) hold none and are copied as they are. Short ones, such as the
    /// subscription id written into every MESSAGE of a fan-out, are checked byte by byte:
    /// below a few dozen bytes that is cheaper than setting up the vectorised scans, which
    /// take the longer values.
    fn needs_escaping(self, bytes: &[u8]) -> bool {
        const SHORT: usize = 32;
        let full = match self {
            Escaping::Raw => return false,
            Escaping::WithoutCr => false,
            Escaping::Full => true,
        };
        if bytes.len() < SHORT {
            return bytes
                .iter()
                .any(|&b| matches!(b, b'\\' | b'\n' | b':') || (full && b == b'\r'));
        }
        memchr::memchr3(b'\\', b'\n', b':', bytes).is_some()
            || (full && memchr::memchr(b'\r', bytes).is_some())
    }

    /// Appends `text` with this escaping applied.
    pub(crate) fn escape_into(self, text: &str, dst: &mut BytesMut) {
        let bytes = text.as_bytes();
        if !self.needs_escaping(bytes) {
            dst.put_slice(bytes);
            return;
        }
        let mut copied = 0;
        for (at, &byte) in bytes.iter().enumerate() {
            let replacement: &[u8] = match byte {
                b'\\' => b"\\\\",
                b'\n' => b"\\n",
                b':' => b"\\c",
                b'\r' if self == Escaping::Full => b"\\r",
                _ => continue,
            };
            dst.put_slice(&bytes[copied..at]);
            dst.put_slice(replacement);
            copied = at + 1;
        }
        dst.put_slice(&bytes[copied..]);
    }
}

#[cfg(test)]
mod tests {
    use super::Escaping;
    use bytes::BytesMut;

    /// The short-value check and the vectorised one must agree: every escaped octet, at every
    /// position of values on both sides of the length where one hands over to the other.
    #[test]
    fn every_special_octet_is_escaped_at_every_length_and_position() {
        let cases = [
            (Escaping::Full, '\\', "\\\\"),
            (Escaping::Full, '\n', "\\n"),
            (Escaping::Full, ':', "\\c"),
            (Escaping::Full, '\r', "\\r"),
            (Escaping::WithoutCr, ':', "\\c"),
            (Escaping::WithoutCr, '\r', "\r"),
            (Escaping::Raw, ':', ":"),
        ];
        for (escaping, special, wire) in cases {
            for len in 1..80 {
                for at in 0..len {
                    let mut text = "x".repeat(len);
                    text.replace_range(at..at + 1, &special.to_string());
                    let mut dst = BytesMut::new();
                    escaping.escape_into(&text, &mut dst);
                    let expected = format!("{}{wire}{}", "x".repeat(at), "x".repeat(len - at - 1));
                    assert_eq!(&dst[..], expected.as_bytes(), "{escaping:?} {len} {at}");
                }
            }
        }
    }
}
