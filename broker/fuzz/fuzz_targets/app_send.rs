//! A SEND's destination and body (split at the first newline): the destination parse and the
//! chat request typing must refuse, never panic. Checks in `stompbox::fuzzing::app_send`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| stompbox::fuzzing::app_send(data));
