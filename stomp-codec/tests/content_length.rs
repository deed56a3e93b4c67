//! `content-length` (first occurrence) fixes the body length, NULs included, and must be
//! followed by NUL; without it the body runs to the first NUL.

mod common;

use bytes::BytesMut;
use common::{decode_one, first_error, frame};
use stomp_codec::{CodecError, Command, Version, encode_frame};

#[test]
fn content_length_body_may_contain_nuls() {
    let decoded = decode_one(b"SEND\ncontent-length:5\n\na\0b\0c\0");
    assert_eq!(&decoded.body[..], b"a\0b\0c");
}

#[test]
fn zero_content_length_is_an_empty_body() {
    let decoded = decode_one(b"SEND\ncontent-length:0\n\n\0");
    assert!(decoded.body.is_empty());
}

#[test]
fn without_content_length_the_body_ends_at_the_first_nul() {
    let decoded = decode_one(b"SEND\n\nabc\0");
    assert_eq!(&decoded.body[..], b"abc");
}

#[test]
fn the_first_content_length_wins() {
    let decoded = decode_one(b"SEND\ncontent-length:2\ncontent-length:9\n\nab\0");
    assert_eq!(&decoded.body[..], b"ab");
    assert_eq!(decoded.headers.get("content-length"), Some("2"));
}

#[test]
fn body_longer_than_content_length_is_missing_nul() {
    let error = first_error(b"SEND\ncontent-length:3\n\nabcd\0");
    assert!(matches!(error, CodecError::MissingNul), "{error:?}");
}

#[test]
fn invalid_content_length_is_an_error() {
    for value in ["x", "", "-1", "+1", " 1", "1 ", "0x10", "1.0"] {
        let wire = format!("SEND\ncontent-length:{value}\n\n\0");
        let error = first_error(wire.as_bytes());
        assert!(
            matches!(&error, CodecError::InvalidContentLength(v) if v == value),
            "{value:?}: {error:?}"
        );
    }
}

#[test]
fn content_length_with_crlf_line_end_is_read_without_the_cr() {
    let decoded = decode_one(b"SEND\r\ncontent-length:2\r\n\r\n\0\0\0");
    assert_eq!(&decoded.body[..], b"\0\0");
}

#[test]
fn encoder_adds_content_length_to_a_non_empty_body() {
    let sent = frame(Command::Send, &[("destination", "/q")], b"a\0b");
    let mut dst = BytesMut::new();
    encode_frame(&sent, Version::V1_2, &mut dst);
    assert_eq!(
        &dst[..],
        b"SEND\ndestination:/q\ncontent-length:3\n\na\0b\0"
    );
    let mut expected = sent;
    expected.headers.push("content-length", "3");
    assert_eq!(decode_one(&dst), expected);
}

#[test]
fn encoder_keeps_an_existing_content_length_and_adds_none_to_an_empty_body() {
    let sent = frame(Command::Send, &[("content-length", "2")], b"ab");
    let mut dst = BytesMut::new();
    encode_frame(&sent, Version::V1_2, &mut dst);
    assert_eq!(&dst[..], b"SEND\ncontent-length:2\n\nab\0");

    let mut dst = BytesMut::new();
    encode_frame(&frame(Command::Send, &[], b""), Version::V1_2, &mut dst);
    assert_eq!(&dst[..], b"SEND\n\n\0");
}
