//! The properties the broker's fuzz targets (`broker/fuzz/`) check, kept here so
//! `tests/fuzz_corpus.rs` replays the committed corpus through the same code under a plain
//! `cargo test`. Not part of the supported API.
//!
//! Each function takes the raw bytes the fuzzer made and panics on a violated property;
//! refusing the input (an error value) is always fine, panicking on it never is.
//! - [`app_send`]: a SEND's `destination` header and body as a client can write them: the
//!   destination parses or is refused, and an `/app/` one is typed into a chat request or
//!   refused as malformed, never a panic (serde's JSON parser included).
//! - [`ws_stream`]: the bytes a WebSocket client writes after the upgrade, read by the
//!   broker's own frame reader (`transport::ws_frame`, bounded as the broker bounds it) in
//!   reads of a size the input picks; the STOMP decoder fed the payloads read by read, as
//!   `transport::ws` does, yields what it yields from all payloads at once (a frame split
//!   across WebSocket frames or reads, or several frames in one, decode alike).

use bytes::BytesMut;
use stomp_codec::Version;
use stomp_codec::fuzzing::{FUZZ_LIMITS, decode_chunks};

use crate::chat::ChatRequest;
use crate::destination::Destination;
use crate::transport::ws_frame::FrameReader;

/// Splits `data` at its first newline into a destination and a body, as a SEND frame carries
/// them, and checks the parse of both.
pub fn app_send(data: &[u8]) {
    let (destination, body) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    // Header values reach the broker as UTF-8 (the codec refuses anything else).
    let Ok(destination) = std::str::from_utf8(destination) else {
        return;
    };
    let Ok(Destination::App(action)) = Destination::parse(destination) else {
        return;
    };
    // Typed or refused as malformed: both are answers; only a panic is a finding.
    let _ = ChatRequest::try_from((action.as_str(), body));
}

/// Largest WebSocket frame the check allows: small, so fuzz inputs reach the bound (the
/// broker sets its own from `--max-frame-size`).
const WS_MAX_MESSAGE: usize = 4096;

/// Reads `data` as a client's WebSocket byte stream and checks that STOMP decoding does not
/// depend on where WebSocket frames or reads split it.
pub fn ws_stream(data: &[u8]) {
    // The first byte picks how the rest arrives: in reads of 1 to 256 bytes.
    let Some((&step, data)) = data.split_first() else {
        return;
    };
    let mut reader = FrameReader::new(WS_MAX_MESSAGE);
    let mut input = BytesMut::new();
    let mut reply = Vec::new();
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    for read in data.chunks(usize::from(step) + 1) {
        let before = input.len();
        match reader.feed(read, &mut input, &mut reply) {
            Ok(fed) => {
                assert!(
                    input.len() - before <= read.len(),
                    "more payload than input"
                );
                chunks.push(input[before..].to_vec());
                if fed.close {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    let joined = chunks.concat();
    let chunks: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
    assert_eq!(
        decode_chunks(&chunks, Version::V1_2, FUZZ_LIMITS),
        decode_chunks(&[&joined], Version::V1_2, FUZZ_LIMITS),
        "decoding depends on where the WebSocket reads split the input"
    );
}
