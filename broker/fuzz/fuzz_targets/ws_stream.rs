//! A WebSocket client's bytes after the upgrade, through tungstenite (server side) into the
//! STOMP decoder: no panic, and decoding independent of message boundaries. Checks in
//! `stompbox::fuzzing::ws_stream`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| stompbox::fuzzing::ws_stream(data));
