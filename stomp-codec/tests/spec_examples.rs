//! Every example frame of the STOMP 1.2 specification decodes to the frame it shows, however
//! the bytes are chunked.

mod common;

use bytes::BytesMut;
use common::{SPEC_EXAMPLES, decode_whole, frames};
use stomp_codec::fuzzing::{Outcome, decode_chunks};
use stomp_codec::{Item, Limits, StompCodec, Version};
use tokio_util::codec::Decoder;

#[test]
fn spec_examples_decode_whole() {
    for example in SPEC_EXAMPLES {
        let decoded = frames(decode_whole(example.wire, Version::V1_2));
        assert_eq!(decoded, vec![example.frame()], "{}", example.name);
    }
}

#[test]
fn spec_examples_decode_the_same_split_at_every_byte() {
    for example in SPEC_EXAMPLES {
        let whole = decode_whole(example.wire, Version::V1_2);
        for split in 0..=example.wire.len() {
            let (head, tail) = example.wire.split_at(split);
            let chunked = decode_chunks(&[head, tail], Version::V1_2, Limits::default());
            assert_eq!(chunked, whole, "{} split at {split}", example.name);
        }
    }
}

#[test]
fn spec_examples_decode_fed_one_byte_at_a_time() {
    for example in SPEC_EXAMPLES {
        let bytes: Vec<&[u8]> = example.wire.chunks(1).collect();
        let decoded = decode_chunks(&bytes, Version::V1_2, Limits::default());
        assert_eq!(
            decoded,
            vec![Outcome::Item(Item::Frame(example.frame()))],
            "{}",
            example.name
        );
    }
}

#[test]
fn every_strict_prefix_of_a_spec_example_decodes_to_none() {
    for example in SPEC_EXAMPLES {
        for len in 0..example.wire.len() {
            let mut codec = StompCodec::default();
            let mut buf = BytesMut::from(&example.wire[..len]);
            let decoded = codec.decode(&mut buf);
            assert!(
                matches!(decoded, Ok(None)),
                "{} prefix {len}: {decoded:?}",
                example.name
            );
            assert_eq!(buf.len(), len, "a prefix must stay buffered");
        }
    }
}

#[test]
fn spec_examples_back_to_back_decode_in_order() {
    let wire: Vec<u8> = SPEC_EXAMPLES
        .iter()
        .flat_map(|example| example.wire.iter().copied())
        .collect();
    let expected: Vec<_> = SPEC_EXAMPLES
        .iter()
        .map(|example| example.frame())
        .collect();
    assert_eq!(frames(decode_whole(&wire, Version::V1_2)), expected);
    let bytes: Vec<&[u8]> = wire.chunks(7).collect();
    let chunked = decode_chunks(&bytes, Version::V1_2, Limits::default());
    assert_eq!(frames(chunked), expected);
}

#[test]
fn spec_example_bodies_are_zero_copy_slices_of_the_read_buffer() {
    let example = SPEC_EXAMPLES
        .iter()
        .find(|example| example.name == "MESSAGE")
        .expect("MESSAGE example");
    let mut buf = BytesMut::from(example.wire);
    let start = buf.as_ptr() as usize;
    let end = start + buf.len();
    let Ok(Some(Item::Frame(frame))) = StompCodec::default().decode(&mut buf) else {
        panic!("MESSAGE example did not decode");
    };
    let body = frame.body.as_ptr() as usize;
    assert!(
        (start..end).contains(&body),
        "body was copied out of the buffer"
    );
}
