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

    /// Appends `text` with this escaping applied.
    pub(crate) fn escape_into(self, text: &str, dst: &mut BytesMut) {
        let bytes = text.as_bytes();
        // Most values (ids, destinations, content types) need no escaping: one vectorised scan
        // for the characters that do, then a plain copy.
        let needs_escaping = memchr::memchr3(b'\\', b'\n', b':', bytes).is_some()
            || (self == Escaping::Full && memchr::memchr(b'\r', bytes).is_some());
        if self == Escaping::Raw || !needs_escaping {
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
