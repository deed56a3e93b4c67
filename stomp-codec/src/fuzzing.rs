//! The decoder properties that the fuzz target and the corpus-replay test both check, kept in
//! one place so the two cannot drift apart. Not part of the supported API.
//!
//! For any input and each version: decoding it whole equals decoding it in two chunks split at
//! a point taken from its first byte, and every decoded frame that the wire can represent
//! re-encodes to bytes that decode to the same frame.

use bytes::BytesMut;
use tokio_util::codec::Decoder;

use crate::codec::StompCodec;
use crate::encode::encode_frame;
use crate::frame::{Frame, Item, Version};
use crate::limits::Limits;

/// Small limits, so inputs of a few KiB (libFuzzer's default size) reach every limit error.
pub const FUZZ_LIMITS: Limits = Limits {
    max_frame_size: 2048,
    max_headers: 16,
    max_header_line: 256,
    max_body: 1024,
};

/// One step of a decode: an item, or the error that ended decoding (as its `Debug` text, since
/// `CodecError` holds an `io::Error` and so has no `PartialEq`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Item(Item),
    Error(String),
}

/// Feeds `chunks` one after another to a fresh codec, decoding as far as each allows; stops at
/// the first error.
pub fn decode_chunks(chunks: &[&[u8]], version: Version, limits: Limits) -> Vec<Outcome> {
    let mut codec = StompCodec::new(limits);
    codec.set_version(version);
    let mut buf = BytesMut::new();
    let mut outcomes = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(item)) => outcomes.push(Outcome::Item(item)),
                Ok(None) => break,
                Err(error) => {
                    outcomes.push(Outcome::Error(format!("{error:?}")));
                    return outcomes;
                }
            }
        }
    }
    outcomes
}

/// Checks every property on `data`; panics on a violation.
pub fn check(data: &[u8]) {
    let split = data
        .first()
        .map_or(0, |&first| usize::from(first) % (data.len() + 1));
    let (head, tail) = data.split_at(split);
    for version in [Version::V1_0, Version::V1_1, Version::V1_2] {
        let whole = decode_chunks(&[data], version, FUZZ_LIMITS);
        let chunked = decode_chunks(&[head, tail], version, FUZZ_LIMITS);
        assert_eq!(whole, chunked, "{version}: whole vs split at {split}");
        for outcome in &whole {
            if let Outcome::Item(Item::Frame(frame)) = outcome {
                check_round_trip(frame, version);
            }
        }
    }
}

/// Whether `frame`'s headers survive encoding for `version`: where CR is not escaped (1.0,
/// 1.1, and CONNECT/STOMP/CONNECTED), a value ending in CR reads back as a CRLF line end.
/// Everything else a decoder can produce, an encoder can write back.
pub fn representable(frame: &Frame, version: Version) -> bool {
    let escapes_cr = version == Version::V1_2 && frame.command.escapes_headers();
    escapes_cr
        || frame
            .headers
            .iter()
            .all(|(_, value)| !value.ends_with('\r'))
}

/// What decoding the encoding of `frame` yields: the same frame, plus the `content-length` the
/// encoder adds to a non-empty body that has none.
pub fn after_round_trip(frame: &Frame) -> Frame {
    let mut expected = frame.clone();
    if !frame.body.is_empty() && !frame.headers.contains("content-length") {
        expected
            .headers
            .push("content-length", frame.body.len().to_string());
    }
    expected
}

/// Encodes `frame` for `version` and checks it decodes to [`after_round_trip`]; skips frames
/// that are not [`representable`].
pub fn check_round_trip(frame: &Frame, version: Version) {
    if !representable(frame, version) {
        return;
    }
    let mut wire = BytesMut::new();
    encode_frame(frame, version, &mut wire);
    let decoded = decode_chunks(&[&wire], version, Limits::default());
    assert_eq!(
        decoded,
        vec![Outcome::Item(Item::Frame(after_round_trip(frame)))],
        "{version}: round trip of {frame:?} via {wire:?}"
    );
}
