//! The properties the broker's fuzz targets (`broker/fuzz/`) check, kept here so
//! `tests/fuzz_corpus.rs` replays the committed corpus through the same code under a plain
//! `cargo test`. Not part of the supported API.
//!
//! Each function takes the raw bytes the fuzzer made and panics on a violated property;
//! refusing the input (an error value) is always fine, panicking on it never is.
//! - [`app_send`]: a SEND's `destination` header and body as a client can write them: the
//!   destination parses or is refused, and an `/app/` one is typed into a chat request or
//!   refused as malformed, never a panic (serde's JSON parser included).
//! - [`ws_stream`]: the bytes a WebSocket client writes after the upgrade, read by tungstenite
//!   on the server side (the parser behind axum's upgrade, bounded as the broker bounds it);
//!   the STOMP decoder fed the payloads message by message, as `transport::ws` does, yields
//!   what it yields from all payloads at once (a frame split across WebSocket messages, or
//!   several frames in one, decode alike).

use std::io::{self, Cursor, Read, Write};

use stomp_codec::Version;
use stomp_codec::fuzzing::{FUZZ_LIMITS, decode_chunks};
use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::{Message, WebSocket};

use crate::chat::ChatRequest;
use crate::destination::Destination;

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

/// The client's side of the socket: what it wrote, then end of stream; what the server
/// writes back (pongs, closes) is dropped.
struct ClientBytes(Cursor<Vec<u8>>);

impl Read for ClientBytes {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for ClientBytes {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Largest WebSocket message and frame the check allows: small, so fuzz inputs reach the
/// bounds (the broker sets its own from `--max-frame-size`).
const WS_MAX_MESSAGE: usize = 4096;

/// Reads `data` as a client's WebSocket byte stream and checks that STOMP decoding does not
/// depend on where the WebSocket messages split it.
pub fn ws_stream(data: &[u8]) {
    let config = WebSocketConfig::default()
        .max_message_size(Some(WS_MAX_MESSAGE))
        .max_frame_size(Some(WS_MAX_MESSAGE));
    let mut socket = WebSocket::from_raw_socket(
        ClientBytes(Cursor::new(data.to_vec())),
        Role::Server,
        Some(config),
    );
    let mut payloads: Vec<Vec<u8>> = Vec::new();
    // Each read consumes input or ends: a stream of n bytes cannot give more than n messages.
    for _ in 0..=data.len() {
        match socket.read() {
            Ok(Message::Text(text)) => payloads.push(text.as_bytes().to_vec()),
            Ok(Message::Binary(bytes)) => payloads.push(bytes.to_vec()),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    let joined = payloads.concat();
    let chunks: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
    assert_eq!(
        decode_chunks(&chunks, Version::V1_2, FUZZ_LIMITS),
        decode_chunks(&[&joined], Version::V1_2, FUZZ_LIMITS),
        "decoding depends on the WebSocket message boundaries"
    );
}
