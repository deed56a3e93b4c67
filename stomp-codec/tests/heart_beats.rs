//! Each EOL between frames is one heart-beat, including the EOLs that may follow a NUL.

mod common;

use bytes::BytesMut;
use common::{decode_whole, frame};
use stomp_codec::fuzzing::{Outcome, decode_chunks};
use stomp_codec::{Command, HEARTBEAT, Item, Limits, StompCodec, Version};
use tokio_util::codec::Decoder;

fn beat() -> Outcome {
    Outcome::Item(Item::HeartBeat)
}

#[test]
fn heart_beats_between_frames_are_items() {
    let wire = b"\nACK\nid:1\n\n\0\n\n\r\nNACK\nid:2\n\n\0";
    let expected = vec![
        beat(),
        Outcome::Item(Item::Frame(frame(Command::Ack, &[("id", "1")], b""))),
        beat(),
        beat(),
        beat(),
        Outcome::Item(Item::Frame(frame(Command::Nack, &[("id", "2")], b""))),
    ];
    assert_eq!(decode_whole(wire, Version::V1_2), expected);
    let bytes: Vec<&[u8]> = wire.chunks(1).collect();
    assert_eq!(
        decode_chunks(&bytes, Version::V1_2, Limits::default()),
        expected
    );
}

#[test]
fn a_lone_cr_waits_for_its_lf() {
    let mut codec = StompCodec::default();
    let mut buf = BytesMut::from(&b"\r"[..]);
    assert!(matches!(codec.decode(&mut buf), Ok(None)));
    buf.extend_from_slice(b"\n");
    assert!(matches!(codec.decode(&mut buf), Ok(Some(Item::HeartBeat))));
    assert!(buf.is_empty());
}

#[test]
fn the_heartbeat_constant_decodes_as_a_heart_beat() {
    assert_eq!(decode_whole(HEARTBEAT, Version::V1_2), vec![beat()]);
}
