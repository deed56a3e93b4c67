//! CRLF is accepted wherever LF is: command line, header lines, the blank line and between
//! frames; a CR that is not part of an EOL is data.

mod common;

use common::{SPEC_EXAMPLES, decode_one, decode_one_at, decode_whole, frame, frames};
use stomp_codec::fuzzing::{Outcome, decode_chunks};
use stomp_codec::{Command, Item, Limits, Version};

/// Rewrites every LF outside the body of a frame as CRLF.
fn crlf_headers(wire: &[u8]) -> Vec<u8> {
    let blank = wire
        .windows(2)
        .position(|pair| pair == b"\n\n")
        .expect("a blank line")
        + 2;
    let mut out = Vec::new();
    for &byte in &wire[..blank] {
        if byte == b'\n' {
            out.push(b'\r');
        }
        out.push(byte);
    }
    out.extend_from_slice(&wire[blank..]);
    out
}

#[test]
fn spec_examples_with_crlf_line_ends_decode_the_same() {
    for example in SPEC_EXAMPLES {
        let wire = crlf_headers(example.wire);
        assert_eq!(decode_one(&wire), example.frame(), "{}", example.name);
        for split in 0..=wire.len() {
            let (head, tail) = wire.split_at(split);
            let chunked = decode_chunks(&[head, tail], Version::V1_2, Limits::default());
            assert_eq!(
                frames(chunked),
                vec![example.frame()],
                "{} split at {split}",
                example.name
            );
        }
    }
}

#[test]
fn mixed_lf_and_crlf_line_ends_decode() {
    let decoded = decode_one(b"SEND\r\ndestination:/q\nreceipt:1\r\n\nx\0");
    assert_eq!(
        decoded,
        frame(
            Command::Send,
            &[("destination", "/q"), ("receipt", "1")],
            b"x"
        )
    );
}

#[test]
fn crlf_between_frames_is_one_heart_beat() {
    let decoded = decode_whole(b"\r\n\r\nACK\r\nid:1\r\n\r\n\0\r\n", Version::V1_2);
    assert_eq!(
        decoded,
        vec![
            Outcome::Item(Item::HeartBeat),
            Outcome::Item(Item::HeartBeat),
            Outcome::Item(Item::Frame(frame(Command::Ack, &[("id", "1")], b""))),
            Outcome::Item(Item::HeartBeat),
        ]
    );
}

#[test]
fn only_one_cr_before_lf_is_the_line_end() {
    // At 1.2 a raw CR is not a valid value octet, but the decoder is lenient and keeps it.
    let decoded = decode_one(b"SEND\nk:v\r\r\n\n\0");
    assert_eq!(decoded.headers.get("k"), Some("v\r"));
}

#[test]
fn a_cr_inside_a_value_is_data() {
    let decoded = decode_one_at(b"SEND\nk:a\rb\n\n\0", Version::V1_1);
    assert_eq!(decoded.headers.get("k"), Some("a\rb"));
}

#[test]
fn crlf_in_a_body_is_body() {
    let decoded = decode_one(b"SEND\r\n\r\nline\r\n\0");
    assert_eq!(&decoded.body[..], b"line\r\n");
}
