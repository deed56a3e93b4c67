//! Each of the 15 commands encodes to known bytes, and those bytes decode back to the frame.

mod common;

use bytes::BytesMut;
use common::{decode_one, frame};
use stomp_codec::{Command, Frame, StompCodec, Version, encode_frame};
use tokio_util::codec::Encoder;

/// One frame per command with its exact wire form at STOMP 1.2.
fn golden() -> Vec<(Frame, &'static [u8])> {
    vec![
        (
            frame(Command::Connect, &[("accept-version", "1.2"), ("host", "/")], b""),
            b"CONNECT\naccept-version:1.2\nhost:/\n\n\0",
        ),
        (
            frame(Command::Stomp, &[("accept-version", "1.1,1.2"), ("host", "vh")], b""),
            b"STOMP\naccept-version:1.1,1.2\nhost:vh\n\n\0",
        ),
        (
            frame(Command::Connected, &[("version", "1.2"), ("heart-beat", "0,0")], b""),
            b"CONNECTED\nversion:1.2\nheart-beat:0,0\n\n\0",
        ),
        (
            frame(Command::Send, &[("destination", "/queue/a")], b"hi"),
            b"SEND\ndestination:/queue/a\ncontent-length:2\n\nhi\0",
        ),
        (
            frame(Command::Subscribe, &[("id", "s1"), ("destination", "/topic/t"), ("ack", "auto")], b""),
            b"SUBSCRIBE\nid:s1\ndestination:/topic/t\nack:auto\n\n\0",
        ),
        (
            frame(Command::Unsubscribe, &[("id", "s1")], b""),
            b"UNSUBSCRIBE\nid:s1\n\n\0",
        ),
        (frame(Command::Ack, &[("id", "m-1")], b""), b"ACK\nid:m-1\n\n\0"),
        (frame(Command::Nack, &[("id", "m-2")], b""), b"NACK\nid:m-2\n\n\0"),
        (
            frame(Command::Begin, &[("transaction", "tx1")], b""),
            b"BEGIN\ntransaction:tx1\n\n\0",
        ),
        (
            frame(Command::Commit, &[("transaction", "tx1")], b""),
            b"COMMIT\ntransaction:tx1\n\n\0",
        ),
        (
            frame(Command::Abort, &[("transaction", "tx1")], b""),
            b"ABORT\ntransaction:tx1\n\n\0",
        ),
        (
            frame(Command::Disconnect, &[("receipt", "77")], b""),
            b"DISCONNECT\nreceipt:77\n\n\0",
        ),
        (
            frame(
                Command::Message,
                &[("subscription", "s1"), ("message-id", "1"), ("destination", "/queue/a")],
                b"body",
            ),
            b"MESSAGE\nsubscription:s1\nmessage-id:1\ndestination:/queue/a\ncontent-length:4\n\nbody\0",
        ),
        (
            frame(Command::Receipt, &[("receipt-id", "77")], b""),
            b"RECEIPT\nreceipt-id:77\n\n\0",
        ),
        (
            frame(Command::Error, &[("message", "bad")], b"detail"),
            b"ERROR\nmessage:bad\ncontent-length:6\n\ndetail\0",
        ),
    ]
}

#[test]
fn golden_covers_every_command() {
    let commands: Vec<Command> = golden().iter().map(|(frame, _)| frame.command).collect();
    assert_eq!(commands, Command::ALL.to_vec());
}

#[test]
fn every_command_encodes_to_its_golden_bytes() {
    for (frame, wire) in golden() {
        let mut dst = BytesMut::new();
        encode_frame(&frame, Version::V1_2, &mut dst);
        assert_eq!(&dst[..], wire, "{}", frame.command);
    }
}

#[test]
fn every_command_decodes_from_its_golden_bytes() {
    for (mut frame, wire) in golden() {
        if !frame.body.is_empty() {
            frame
                .headers
                .push("content-length", frame.body.len().to_string());
        }
        assert_eq!(decode_one(wire), frame, "{}", frame.command);
    }
}

#[test]
fn encoder_impls_use_the_codec_version() {
    let frame = frame(Command::Send, &[("k", "a:b")], b"");
    let mut codec = StompCodec::default();
    let mut dst = BytesMut::new();
    codec.encode(&frame, &mut dst).expect("encode by reference");
    assert_eq!(&dst[..], b"SEND\nk:a\\cb\n\n\0");

    codec.set_version(Version::V1_0);
    assert_eq!(codec.version(), Version::V1_0);
    let mut dst = BytesMut::new();
    codec.encode(frame, &mut dst).expect("encode by value");
    assert_eq!(&dst[..], b"SEND\nk:a:b\n\n\0");
}
