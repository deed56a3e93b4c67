//! Frames that break the grammar fail with the error that names what is wrong.

mod common;

use bytes::BytesMut;
use common::first_error;
use stomp_codec::{CodecError, StompCodec};
use tokio_util::codec::Decoder;

#[test]
fn unknown_command_is_an_error() {
    for wire in [
        &b"send\n\n\0"[..],
        b"SENDX\n\n\0",
        b"SEND \n\n\0",
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\0\n\n\0",
    ] {
        let error = first_error(wire);
        assert!(
            matches!(error, CodecError::UnknownCommand(_)),
            "{wire:?}: {error:?}"
        );
    }
}

#[test]
fn unknown_command_fails_before_the_rest_of_the_frame_arrives() {
    let mut buf = BytesMut::from(&b"HELLO\nk:v\n"[..]);
    let error = StompCodec::default().decode(&mut buf);
    assert!(
        matches!(&error, Err(CodecError::UnknownCommand(c)) if c == "HELLO"),
        "{error:?}"
    );
}

#[test]
fn header_without_colon_is_malformed() {
    for wire in [
        &b"SEND\nnocolon\n\n\0"[..],
        b"SEND\n:empty-name\n\n\0",
        b"SEND\n\r\r\n\n\0",
    ] {
        let error = first_error(wire);
        assert!(
            matches!(error, CodecError::MalformedHeader),
            "{wire:?}: {error:?}"
        );
    }
}

#[test]
fn header_that_is_not_utf8_is_an_error() {
    for wire in [
        &b"SEND\nk:\xff\n\n\0"[..],
        b"SEND\n\xc3:v\n\n\0",
        b"CONNECT\nk:\xc3\x28\n\n\0",
    ] {
        let error = first_error(wire);
        assert!(
            matches!(error, CodecError::InvalidUtf8),
            "{wire:?}: {error:?}"
        );
    }
}

#[test]
fn body_need_not_be_utf8() {
    let decoded = common::decode_one(b"SEND\n\n\xff\xfe\0");
    assert_eq!(&decoded.body[..], b"\xff\xfe");
}

#[test]
fn a_parse_error_consumes_its_frame_so_the_stream_can_be_resumed() {
    let mut codec = StompCodec::default();
    let mut buf = BytesMut::from(&b"SEND\nbad\n\n\0ACK\nid:1\n\n\0"[..]);
    assert!(matches!(
        codec.decode(&mut buf),
        Err(CodecError::MalformedHeader)
    ));
    assert_eq!(&buf[..], b"ACK\nid:1\n\n\0");
}
