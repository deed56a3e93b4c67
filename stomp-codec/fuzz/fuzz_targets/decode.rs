//! Decodes arbitrary bytes: whole and in two chunks (split point from the first byte) must
//! agree, and every decoded frame must survive re-encoding. The checks live in
//! `stomp_codec::fuzzing` so `tests/fuzz_corpus.rs` replays the corpus through the same code.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| stomp_codec::fuzzing::check(data));
