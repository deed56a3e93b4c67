//! The resumable frame-boundary scanner: finds where a frame's lines, headers and body end in a
//! growing buffer, and enforces every [`Limits`] bound as the bytes arrive.
//!
//! State survives between calls, so a frame that trickles in a few bytes at a time is scanned
//! once in total (O(n)), never from its start again. The buffer always starts at the first
//! octet of the frame being scanned: the codec removes heart-beats and whole frames before the
//! next call.
//!
//! Limit errors must not depend on how the bytes were chunked: whether a frame arrives whole
//! or one byte at a time, the same input yields the same error. So each limit is tied to the
//! buffer offset of the first octet that breaks it, and when two limits are broken the one
//! broken at the lower offset wins (the frame limit on a tie).

use crate::error::CodecError;
use crate::frame::Command;
use crate::limits::Limits;
use crate::parse;

/// What one call to [`Scanner::scan`] found at the front of the buffer.
#[derive(Debug)]
pub(crate) enum Scanned {
    /// More bytes are needed; nothing was wrong so far.
    Incomplete,
    /// An EOL between frames, `len` octets long (1 for LF, 2 for CRLF).
    HeartBeat { len: usize },
    /// A whole frame occupies the front of the buffer.
    Frame(Boundary),
}

/// Where the parts of a complete frame sit in the buffer (offsets from the frame's start).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Boundary {
    pub(crate) command: Command,
    /// First octet of the first header line.
    pub(crate) headers_start: usize,
    /// First octet of the blank line that ends the headers.
    pub(crate) headers_end: usize,
    pub(crate) header_count: usize,
    pub(crate) body_start: usize,
    pub(crate) body_len: usize,
    /// Octets from the command through the NUL.
    pub(crate) frame_len: usize,
}

/// Progress through one frame, kept between calls.
#[derive(Debug, Default)]
struct InFrame {
    /// Offset up to which the buffer has been examined.
    scanned: usize,
    /// Offset of the line being scanned.
    line_start: usize,
    /// Known once the command line is complete.
    command: Option<Command>,
    headers_start: usize,
    header_count: usize,
    /// The first `content-length`, once its line is complete.
    content_length: Option<usize>,
    /// Known once the blank line is complete: (headers_end, body_start).
    body: Option<(usize, usize)>,
}

/// The resumable scanner; one per connection, inside the codec. The partial frame's state is
/// boxed: every connection holds a scanner for its whole life, idle or not, and only one in
/// the middle of a frame needs the state (≈ 90 B inline otherwise).
#[derive(Debug, Default)]
pub(crate) struct Scanner {
    frame: Option<Box<InFrame>>,
}

/// The header whose first occurrence delimits the body.
const CONTENT_LENGTH_PREFIX: &[u8] = b"content-length:";

/// How much of a bad `content-length` value an error message quotes.
const QUOTED_VALUE_CHARS: usize = 32;

impl Scanner {
    /// Scans as far as `buf` allows. Anything but `Incomplete` (including an error) ends the
    /// current frame's state, so the next call starts on whatever the codec leaves in front.
    pub(crate) fn scan(&mut self, buf: &[u8], limits: &Limits) -> Result<Scanned, CodecError> {
        let result = self.step(buf, limits);
        if !matches!(result, Ok(Scanned::Incomplete)) {
            self.frame = None;
        }
        result
    }

    /// The buffer length at which the current frame will be complete, when already known
    /// (a `content-length` body); lets the codec reserve the whole frame once.
    pub(crate) fn expected_len(&self) -> Option<usize> {
        let frame = self.frame.as_ref()?;
        let (_, body_start) = frame.body?;
        Some(body_start + frame.content_length? + 1)
    }

    fn step(&mut self, buf: &[u8], limits: &Limits) -> Result<Scanned, CodecError> {
        if let Some(frame) = &mut self.frame {
            return frame.advance(buf, limits);
        }
        match buf {
            [] | [b'\r'] => return Ok(Scanned::Incomplete),
            [b'\n', ..] => return Ok(Scanned::HeartBeat { len: 1 }),
            [b'\r', b'\n', ..] => return Ok(Scanned::HeartBeat { len: 2 }),
            _ => {}
        }
        // A frame that arrived whole never leaves the stack; only a partial one is kept.
        let mut frame = InFrame::default();
        let scanned = frame.advance(buf, limits)?;
        if matches!(scanned, Scanned::Incomplete) {
            self.frame = Some(Box::new(frame));
        }
        Ok(scanned)
    }
}

impl InFrame {
    fn advance(&mut self, buf: &[u8], limits: &Limits) -> Result<Scanned, CodecError> {
        if self.body.is_none() && !self.scan_lines(buf, limits)? {
            return Ok(Scanned::Incomplete);
        }
        self.scan_body(buf, limits)
    }

    /// Scans command and header lines up to the blank line. Returns whether it was reached.
    fn scan_lines(&mut self, buf: &[u8], limits: &Limits) -> Result<bool, CodecError> {
        while self.body.is_none() {
            let Some(found) = memchr::memchr(b'\n', &buf[self.scanned..]) else {
                self.scanned = buf.len();
                // A trailing CR may be half of a CRLF, so it does not count towards the line
                // yet; counting it would fail a line that turns out to be exactly at the limit.
                let content_end = if buf.last() == Some(&b'\r') {
                    buf.len() - 1
                } else {
                    buf.len()
                };
                let line_len = content_end.saturating_sub(self.line_start);
                self.check_line(line_len, buf.len(), limits)?;
                return Ok(false);
            };
            let lf = self.scanned + found;
            self.scanned = lf + 1;
            let line = parse::strip_cr(&buf[self.line_start..lf]);
            self.check_line(line.len(), lf + 1, limits)?;
            self.complete_line(line, lf + 1, limits)?;
            self.line_start = lf + 1;
        }
        Ok(true)
    }

    /// The line-length and frame-size limits for the current line, given `line_len` octets of
    /// it and `frame_len` octets of the frame seen so far.
    fn check_line(
        &self,
        line_len: usize,
        frame_len: usize,
        limits: &Limits,
    ) -> Result<(), CodecError> {
        let line_broken_at =
            (line_len > limits.max_header_line).then_some(self.line_start + limits.max_header_line);
        first_broken(
            line_broken_at.map(|at| {
                (
                    at,
                    CodecError::HeaderLineTooLong {
                        limit: limits.max_header_line,
                    },
                )
            }),
            frame_len,
            limits,
        )
    }

    /// Acts on one complete line (EOL stripped); `next` is the offset after its LF.
    fn complete_line(
        &mut self,
        line: &[u8],
        next: usize,
        limits: &Limits,
    ) -> Result<(), CodecError> {
        if self.command.is_none() {
            self.command = Some(parse::command(line)?);
            self.headers_start = next;
            return Ok(());
        }
        if line.is_empty() {
            self.body = Some((self.line_start, next));
            if let Some(len) = self.content_length {
                // The whole size is known now: refuse before buffering the body.
                if next.saturating_add(len).saturating_add(1) > limits.max_frame_size {
                    return Err(CodecError::FrameTooLarge {
                        limit: limits.max_frame_size,
                    });
                }
            }
            return Ok(());
        }
        self.header_count += 1;
        if self.header_count > limits.max_headers {
            return Err(CodecError::TooManyHeaders {
                limit: limits.max_headers,
            });
        }
        if self.content_length.is_none()
            && let Some(value) = line.strip_prefix(CONTENT_LENGTH_PREFIX)
        {
            let len = content_length(value)?;
            if len > limits.max_body {
                return Err(CodecError::BodyTooLarge {
                    limit: limits.max_body,
                });
            }
            self.content_length = Some(len);
        }
        Ok(())
    }

    /// Finds the end of the body once the headers are complete.
    fn scan_body(&mut self, buf: &[u8], limits: &Limits) -> Result<Scanned, CodecError> {
        // Both are set once the blank line is seen, which is the only way here; "incomplete"
        // is the harmless answer should that ever change.
        let (Some((headers_end, body_start)), Some(command)) = (self.body, self.command) else {
            return Ok(Scanned::Incomplete);
        };
        let body_len = match self.content_length {
            Some(len) => {
                let nul_at = body_start + len;
                match buf.get(nul_at) {
                    None => return Ok(Scanned::Incomplete),
                    Some(0) => len,
                    Some(_) => return Err(CodecError::MissingNul),
                }
            }
            None => {
                let from = self.scanned.max(body_start);
                match memchr::memchr(0, &buf[from..]) {
                    Some(found) => {
                        let nul_at = from + found;
                        self.check_body(body_start, nul_at - body_start, nul_at + 1, limits)?;
                        nul_at - body_start
                    }
                    None => {
                        self.scanned = buf.len();
                        self.check_body(body_start, buf.len() - body_start, buf.len(), limits)?;
                        return Ok(Scanned::Incomplete);
                    }
                }
            }
        };
        Ok(Scanned::Frame(Boundary {
            command,
            headers_start: self.headers_start,
            headers_end,
            header_count: self.header_count,
            body_start,
            body_len,
            frame_len: body_start + body_len + 1,
        }))
    }

    /// The body and frame limits for a NUL-delimited body of `body_len` octets so far.
    fn check_body(
        &self,
        body_start: usize,
        body_len: usize,
        frame_len: usize,
        limits: &Limits,
    ) -> Result<(), CodecError> {
        let body_broken_at = (body_len > limits.max_body).then_some(body_start + limits.max_body);
        first_broken(
            body_broken_at.map(|at| {
                (
                    at,
                    CodecError::BodyTooLarge {
                        limit: limits.max_body,
                    },
                )
            }),
            frame_len,
            limits,
        )
    }
}

/// Picks between a broken local limit (with the offset of the octet that broke it) and the
/// frame limit, so that the same input fails the same way however it was chunked: the lower
/// offset wins, the frame limit on a tie (it is the one a shorter chunk would already show).
fn first_broken(
    local: Option<(usize, CodecError)>,
    frame_len: usize,
    limits: &Limits,
) -> Result<(), CodecError> {
    let frame_broken_at = (frame_len > limits.max_frame_size).then_some(limits.max_frame_size);
    match (local, frame_broken_at) {
        (Some((at, error)), Some(frame_at)) if at < frame_at => Err(error),
        (_, Some(_)) => Err(CodecError::FrameTooLarge {
            limit: limits.max_frame_size,
        }),
        (Some((_, error)), None) => Err(error),
        (None, None) => Ok(()),
    }
}

/// A `content-length` value: decimal digits only, no sign, no spaces. Saturates rather than
/// overflows, so an absurd length fails as `BodyTooLarge`.
fn content_length(value: &[u8]) -> Result<usize, CodecError> {
    let invalid = || {
        CodecError::InvalidContentLength(
            String::from_utf8_lossy(value)
                .chars()
                .take(QUOTED_VALUE_CHARS)
                .collect(),
        )
    };
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return Err(invalid());
    }
    // A well-formed number too big for usize is a body too large, not a malformed header.
    Ok(value.iter().fold(0usize, |len, digit| {
        len.saturating_mul(10)
            .saturating_add(usize::from(digit - b'0'))
    }))
}
