//! The suite's own reading and writing of STOMP bytes, independent of `stomp-codec`.
//!
//! The broker decodes and encodes with `stomp-codec`; if the suite used the same code to check
//! the broker, a symmetric bug (say, escaping on encode but never unescaping on decode) would
//! cancel out and pass. So this module is a second, deliberately plain reading of the STOMP 1.2
//! grammar. It is strict: anything the broker sends that is not a well-formed frame is an error.
//! Only the data types (`Frame`, `Command`, `Headers`, `Version`) are shared with the codec.

use std::fmt;

use bytes::{Buf, Bytes, BytesMut};
use stomp_codec::{Command, Frame, Headers, Version};

/// Something the broker sent that the STOMP grammar does not allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError(pub String);

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed frame from broker: {}", self.0)
    }
}

impl std::error::Error for WireError {}

/// One unit read off the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// An EOL between frames.
    HeartBeat,
    /// A frame, with the exact bytes it was read from (for assertions on escaping).
    Frame { frame: Frame, raw: Bytes },
}

/// Takes one heart-beat or frame off the front of `buf`, or `Ok(None)` when more bytes are
/// needed. Header values are unescaped as `version` says (none for CONNECTED and for 1.0).
pub fn decode(buf: &mut BytesMut, version: Version) -> Result<Option<Received>, WireError> {
    match buf.first() {
        None => return Ok(None),
        Some(b'\n') => {
            buf.advance(1);
            return Ok(Some(Received::HeartBeat));
        }
        Some(b'\r') => {
            return match buf.get(1) {
                None => Ok(None),
                Some(b'\n') => {
                    buf.advance(2);
                    Ok(Some(Received::HeartBeat))
                }
                Some(_) => Err(WireError("CR not followed by LF between frames".into())),
            };
        }
        Some(_) => {}
    }

    // Command line and header lines, up to the blank line.
    let mut pos = 0;
    let mut lines: Vec<&[u8]> = Vec::new();
    loop {
        let Some(nl) = buf[pos..].iter().position(|&b| b == b'\n') else {
            return Ok(None);
        };
        let mut line = &buf[pos..pos + nl];
        if let Some(stripped) = line.strip_suffix(b"\r") {
            line = stripped;
        }
        pos += nl + 1;
        if line.is_empty() {
            break;
        }
        lines.push(line);
    }
    let body_start = pos;

    let command_line =
        std::str::from_utf8(lines[0]).map_err(|_| WireError("command line is not UTF-8".into()))?;
    let command: Command = command_line
        .parse()
        .map_err(|_| WireError(format!("unknown command {command_line:?}")))?;
    let escaped = command.escapes_headers() && version != Version::V1_0;

    let mut headers = Headers::with_capacity(lines.len() - 1);
    for line in &lines[1..] {
        let line = std::str::from_utf8(line)
            .map_err(|_| WireError(format!("{command} header line is not UTF-8")))?;
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| WireError(format!("{command} header line without ':': {line:?}")))?;
        if escaped {
            headers.push(unescape(name, version)?, unescape(value, version)?);
        } else {
            headers.push(name, value);
        }
    }

    let end = match headers.get("content-length") {
        Some(len) => {
            let len: usize = len
                .parse()
                .map_err(|_| WireError(format!("bad content-length {len:?}")))?;
            let nul = body_start + len;
            if buf.len() <= nul {
                return Ok(None);
            }
            if buf[nul] != 0 {
                return Err(WireError(format!(
                    "{command}: byte after content-length {len} is {:#04x}, not NUL",
                    buf[nul]
                )));
            }
            nul
        }
        None => match buf[body_start..].iter().position(|&b| b == 0) {
            Some(i) => body_start + i,
            None => return Ok(None),
        },
    };

    let raw = buf.split_to(end + 1).freeze();
    let body = raw.slice(body_start..end);
    Ok(Some(Received::Frame {
        frame: Frame {
            command,
            headers,
            body,
        },
        raw,
    }))
}

fn unescape(s: &str, version: Version) -> Result<String, WireError> {
    if !s.contains('\\') {
        return Ok(s.to_owned());
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('c') => out.push(':'),
            Some('r') if version == Version::V1_2 => out.push('\r'),
            other => {
                return Err(WireError(format!(
                    "undefined escape \\{} in header {s:?}",
                    other.map(String::from).unwrap_or_default()
                )));
            }
        }
    }
    Ok(out)
}

fn escape(s: &str, version: Version, out: &mut Vec<u8>) {
    for c in s.chars() {
        match c {
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            ':' => out.extend_from_slice(b"\\c"),
            '\r' if version == Version::V1_2 => out.extend_from_slice(b"\\r"),
            c => {
                let mut tmp = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
            }
        }
    }
}

/// Encodes `frame` exactly as given: headers in order, escaped for `version` (never for
/// CONNECT/STOMP, nor for 1.0), and no `content-length` added; callers that need one put it in.
pub fn encode(frame: &Frame, version: Version) -> Vec<u8> {
    let escaped = frame.command.escapes_headers() && version != Version::V1_0;
    let mut out = Vec::with_capacity(64 + frame.body.len());
    out.extend_from_slice(frame.command.as_str().as_bytes());
    out.push(b'\n');
    for (name, value) in frame.headers.iter() {
        if escaped {
            escape(name, version, &mut out);
            out.push(b':');
            escape(value, version, &mut out);
        } else {
            out.extend_from_slice(name.as_bytes());
            out.push(b':');
            out.extend_from_slice(value.as_bytes());
        }
        out.push(b'\n');
    }
    out.push(b'\n');
    out.extend_from_slice(&frame.body);
    out.push(0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(bytes: &[u8], version: Version) -> Vec<Received> {
        let mut buf = BytesMut::from(bytes);
        let mut out = Vec::new();
        while let Some(item) = decode(&mut buf, version).expect("decodes") {
            out.push(item);
        }
        assert!(buf.is_empty(), "left over: {buf:?}");
        out
    }

    #[test]
    fn round_trip_escapes_header_values_for_1_2() {
        let frame = Frame::new(Command::Message)
            .header("k", "a:b\nc\\d\re")
            .with_body(&b"x\0y"[..])
            .header("content-length", "3");
        let bytes = encode(&frame, Version::V1_2);
        assert!(bytes.starts_with(b"MESSAGE\nk:a\\cb\\nc\\\\d\\re\n"));
        let items = decode_all(&bytes, Version::V1_2);
        let [Received::Frame { frame: got, .. }] = items.as_slice() else {
            panic!("one frame expected: {items:?}");
        };
        assert_eq!(got, &frame);
    }

    #[test]
    fn decode_frame_split_at_every_byte() {
        let bytes = b"\nRECEIPT\r\nreceipt-id:7\r\n\r\n\0\n";
        for split in 0..bytes.len() {
            let mut buf = BytesMut::from(&bytes[..split]);
            let mut items = Vec::new();
            while let Some(item) = decode(&mut buf, Version::V1_2).expect("decodes") {
                items.push(item);
            }
            buf.extend_from_slice(&bytes[split..]);
            while let Some(item) = decode(&mut buf, Version::V1_2).expect("decodes") {
                items.push(item);
            }
            assert_eq!(items.len(), 3, "split at {split}: {items:?}");
        }
    }

    #[test]
    fn connected_headers_are_not_unescaped() {
        let items = decode_all(b"CONNECTED\nserver:a\\cb\n\n\0", Version::V1_2);
        let [Received::Frame { frame, .. }] = items.as_slice() else {
            panic!("one frame expected");
        };
        assert_eq!(frame.headers.get("server"), Some("a\\cb"));
    }

    #[test]
    fn undefined_escape_is_an_error() {
        let mut buf = BytesMut::from(&b"MESSAGE\nk:a\\tb\n\n\0"[..]);
        assert!(decode(&mut buf, Version::V1_2).is_err());
    }
}
