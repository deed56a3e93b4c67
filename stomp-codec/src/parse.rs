//! Parsing, with nom over bytes, of the lines of a frame whose boundaries the scanner has
//! already found: the command line and the header lines.
//!
//! Parsing runs once per frame, after the boundary is known, so it needs no resumable state and
//! never sees more than the limits let through.

use nom::bytes::complete::{tag, take_till, take_till1, take_while1};
use nom::combinator::{all_consuming, rest};
use nom::sequence::{separated_pair, terminated};
use nom::{IResult, Parser};

use crate::error::CodecError;
use crate::escape::Escaping;
use crate::frame::{Command, Headers};

type ParseResult<'a, O> = IResult<&'a [u8], O>;

/// Strips the optional CR of a `[CR] LF` line end; the LF is already gone.
pub(crate) fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// One LF-terminated line, without its EOL.
fn line(input: &[u8]) -> ParseResult<'_, &[u8]> {
    terminated(take_till(|b| b == b'\n'), tag(&b"\n"[..]))
        .map(strip_cr)
        .parse(input)
}

/// `name ":" value`: the name is everything up to the first colon and may not be empty; the
/// value is the rest of the line, raw colons included (1.0 peers send them unescaped).
fn header(line: &[u8]) -> ParseResult<'_, (&[u8], &[u8])> {
    all_consuming(separated_pair(
        take_till1(|b| b == b':'),
        tag(&b":"[..]),
        rest,
    ))
    .parse(line)
}

/// A command token: upper-case letters only, the whole line.
fn command_token(line: &[u8]) -> ParseResult<'_, &[u8]> {
    all_consuming(take_while1(|b: u8| b.is_ascii_uppercase())).parse(line)
}

/// How much of an unknown command line an error message quotes.
const QUOTED_COMMAND_CHARS: usize = 64;

/// The command of a command line (EOL already stripped).
pub(crate) fn command(line: &[u8]) -> Result<Command, CodecError> {
    let unknown = || {
        CodecError::UnknownCommand(
            String::from_utf8_lossy(line)
                .chars()
                .take(QUOTED_COMMAND_CHARS)
                .collect(),
        )
    };
    let (_, token) = command_token(line).map_err(|_| unknown())?;
    // The token is ASCII by construction, so this cannot fail; map it anyway rather than unwrap.
    let token = std::str::from_utf8(token).map_err(|_| unknown())?;
    token.parse()
}

/// The header lines of a frame: `block` is every header line, each with its EOL, and nothing
/// else (no command line, no blank line). `count` is the number of lines the scanner saw.
pub(crate) fn headers(
    mut block: &[u8],
    escaping: Escaping,
    count: usize,
) -> Result<Headers, CodecError> {
    let mut headers = Headers::with_capacity(count);
    while !block.is_empty() {
        let (remaining, text) = line(block).map_err(|_| CodecError::MalformedHeader)?;
        let (_, (name, value)) = header(text).map_err(|_| CodecError::MalformedHeader)?;
        headers.push(escaping.unescape(name)?, escaping.unescape(value)?);
        block = remaining;
    }
    Ok(headers)
}
