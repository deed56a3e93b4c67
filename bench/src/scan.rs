//! The receive loop's frame splitter: finds where each MESSAGE's headers and body end with
//! `memchr` and hands out its body (and, when asked, its `ack` value) in place, without building
//! a `Frame`. Other frames (ERROR, RECEIPT) go through the full codec.
//!
//! Why: the load generator shares this machine's two cores with the broker, so whatever it
//! spends per delivery is taken from the broker under test. A full decode allocates the command,
//! every header name and value and the header vector for each of a million MESSAGEs a second,
//! only for the receive loop to read the body's stamp. What the scan does read it reads exactly
//! as the codec would: CRLF or LF line ends, `content-length` (a body may then hold NULs), the
//! first of repeated headers, and a frame size bound.

use bytes::{Buf, BytesMut};
use stomp_codec::{Frame, Item, StompCodec};
use tokio_util::codec::Decoder;

/// Largest frame the scan waits for; the codec's default frame bound, so an endless frame is an
/// error rather than unbounded memory.
pub const MAX_FRAME: usize = 16 * 1024 * 1024;

/// One item scanned off the input.
#[derive(Debug, PartialEq, Eq)]
pub enum Scanned<'a> {
    /// A MESSAGE: its body, and its `ack` header's raw value when the caller asked for it.
    Message {
        body: &'a [u8],
        ack: Option<&'a [u8]>,
    },
    /// Any other frame, decoded whole.
    Frame(Frame),
}

/// Where a MESSAGE starting at the front of `input` ends, if it is complete: (body start, body
/// end, end of the frame after its NUL, the `ack` value's range).
struct Span {
    body: (usize, usize),
    end: usize,
    ack: Option<(usize, usize)>,
}

/// `line` without a trailing CR.
fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Scans the MESSAGE at the front of `input` (its command line already checked). `Ok(None)`:
/// not complete yet.
fn message_span(input: &[u8], want_ack: bool) -> anyhow::Result<Option<Span>> {
    let mut at = memchr::memchr(b'\n', input).map_or(input.len(), |i| i + 1);
    let mut length = None;
    let mut ack = None;
    loop {
        let Some(eol) = memchr::memchr(b'\n', &input[at..]) else {
            return Ok(None);
        };
        let line = trim_cr(&input[at..at + eol]);
        let start = at;
        at += eol + 1;
        if line.is_empty() {
            break;
        }
        if length.is_none()
            && let Some(value) = line.strip_prefix(b"content-length:")
        {
            let n: usize = std::str::from_utf8(value)?.parse()?;
            anyhow::ensure!(n <= MAX_FRAME, "content-length {n} over {MAX_FRAME}");
            length = Some(n);
        } else if want_ack && ack.is_none() && line.starts_with(b"ack:") {
            ack = Some((start + 4, start + line.len()));
        }
    }
    let body_end = match length {
        Some(n) => {
            if input.len() <= at + n {
                return Ok(None);
            }
            anyhow::ensure!(input[at + n] == 0, "no NUL after content-length bytes");
            at + n
        }
        None => match memchr::memchr(0, &input[at..]) {
            Some(i) => at + i,
            None => return Ok(None),
        },
    };
    Ok(Some(Span {
        body: (at, body_end),
        end: body_end + 1,
        ack,
    }))
}

/// Calls `on` for every complete frame at the front of `input` and removes them, leaving a
/// partial frame for the next read. Heart-beats (bare EOLs) are skipped. An `ack` value holding
/// an escape (`\c` in an ActiveMQ id) comes as a decoded frame instead, so the caller never
/// sees raw escapes.
pub fn scan(
    input: &mut BytesMut,
    codec: &mut StompCodec,
    want_ack: bool,
    mut on: impl FnMut(Scanned<'_>),
) -> anyhow::Result<()> {
    loop {
        let eols = input
            .iter()
            .position(|b| *b != b'\n' && *b != b'\r')
            .unwrap_or(input.len());
        input.advance(eols);
        if input.is_empty() {
            return Ok(());
        }
        let is_message = match memchr::memchr(b'\n', input) {
            Some(eol) => trim_cr(&input[..eol]) == b"MESSAGE",
            None => {
                anyhow::ensure!(input.len() <= MAX_FRAME, "command line over {MAX_FRAME}");
                return Ok(());
            }
        };
        if is_message {
            // An incomplete MESSAGE never reaches the codec: it would keep scanning state
            // about a frame this loop may then take off the buffer itself.
            let Some(span) = message_span(input, want_ack)? else {
                anyhow::ensure!(input.len() <= MAX_FRAME, "frame over {MAX_FRAME}");
                return Ok(());
            };
            let escaped = span.ack.is_some_and(|(s, e)| input[s..e].contains(&b'\\'));
            if !escaped {
                on(Scanned::Message {
                    body: &input[span.body.0..span.body.1],
                    ack: span.ack.map(|(s, e)| &input[s..e]),
                });
                input.advance(span.end);
                continue;
            }
        }
        match codec.decode(input)? {
            Some(Item::Frame(frame)) => on(Scanned::Frame(frame)),
            Some(Item::HeartBeat) => {}
            None => {
                anyhow::ensure!(input.len() <= MAX_FRAME, "frame over {MAX_FRAME}");
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stomp_codec::{Command, Limits, Version, encode_frame};

    /// What a scanned item says: body, `ack`, and the command when it is not a MESSAGE.
    type Seen = (Vec<u8>, Option<Vec<u8>>, Option<Command>);

    fn owned(s: Scanned<'_>) -> Seen {
        match s {
            Scanned::Message { body, ack } => (body.to_vec(), ack.map(<[u8]>::to_vec), None),
            Scanned::Frame(f) if f.command == Command::Message => {
                let ack = f.headers.get("ack").map(|a| a.as_bytes().to_vec());
                (f.body.to_vec(), ack, None)
            }
            Scanned::Frame(f) => (f.body.to_vec(), None, Some(f.command)),
        }
    }

    fn scan_all(input: &[u8], split: usize) -> Vec<Seen> {
        let mut codec = StompCodec::new(Limits::default());
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for part in [&input[..split], &input[split..]] {
            buf.extend_from_slice(part);
            scan(&mut buf, &mut codec, true, |s| out.push(owned(s))).expect("valid input");
        }
        assert!(buf.is_empty(), "all consumed");
        out
    }

    /// Every frame the codec decodes from the same bytes, for comparison.
    fn decode_all(input: &[u8]) -> Vec<Seen> {
        let mut codec = StompCodec::new(Limits::default());
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(item) = codec.decode(&mut buf).expect("valid input") {
            if let Item::Frame(f) = item {
                let ack = f.headers.get("ack").map(|a| a.as_bytes().to_vec());
                match f.command {
                    Command::Message => out.push((f.body.to_vec(), ack, None)),
                    c => out.push((f.body.to_vec(), None, Some(c))),
                }
            }
        }
        out
    }

    fn wire() -> Vec<u8> {
        let mut buf = BytesMut::new();
        let frames = [
            Frame::new(Command::Message)
                .header("subscription", "0")
                .header("ack", "17")
                .header("ack", "18")
                .with_body("1 2 3 xxxx"),
            Frame::new(Command::Message)
                .header("subscription", "a:b")
                .with_body(&b"nul\0inside"[..]),
            Frame::new(Command::Receipt).header("receipt-id", "r1"),
            Frame::new(Command::Message)
                .header("ack", "ID:1:2")
                .with_body("escaped ack"),
        ];
        for (i, f) in frames.iter().enumerate() {
            encode_frame(f, Version::V1_2, &mut buf);
            buf.extend_from_slice(if i % 2 == 0 { b"\n" } else { b"\r\n" });
        }
        // A frame with CRLF line ends and no content-length.
        buf.extend_from_slice(b"MESSAGE\r\nack:9\r\nsubscription:0\r\n\r\nplain\0");
        buf.to_vec()
    }

    #[test]
    fn scan_reads_what_the_codec_decodes_split_at_every_byte() {
        let input = wire();
        let expected = decode_all(&input);
        assert_eq!(expected.len(), 5);
        for split in 0..=input.len() {
            assert_eq!(scan_all(&input, split), expected, "split at {split}");
        }
    }

    #[test]
    fn escaped_ack_comes_decoded() {
        let got = scan_all(&wire(), 0);
        assert_eq!(got[3].1.as_deref(), Some(&b"ID:1:2"[..]));
    }

    #[test]
    fn endless_frame_is_an_error() {
        let mut codec = StompCodec::new(Limits::default());
        let mut buf = BytesMut::from(&b"MESSAGE\n\n"[..]);
        buf.resize(MAX_FRAME + 10, b'x');
        assert!(scan(&mut buf, &mut codec, false, |_| {}).is_err());
    }
}
