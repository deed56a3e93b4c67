//! Every limit fails as soon as the buffered bytes break it, not once a whole frame is in, and
//! fails the same way however the bytes were chunked.

mod common;

use bytes::BytesMut;
use common::first_error_with;
use stomp_codec::fuzzing::decode_chunks;
use stomp_codec::{CodecError, Item, Limits, StompCodec, Version};
use tokio_util::codec::Decoder;

const SMALL: Limits = Limits {
    max_frame_size: 512,
    max_headers: 4,
    max_header_line: 64,
    max_body: 256,
};

/// Decodes `bytes` as one buffer that may still be incomplete.
fn decode_partial(bytes: &[u8], limits: Limits) -> Result<Option<Item>, CodecError> {
    StompCodec::new(limits).decode(&mut BytesMut::from(bytes))
}

#[test]
fn endless_header_line_fails_just_past_the_default_limit() {
    let limit = Limits::default().max_header_line;
    let mut wire = b"SEND\nk:".to_vec();
    wire.resize(5 + limit, b'v');
    assert!(matches!(decode_partial(&wire, Limits::default()), Ok(None)));
    wire.push(b'v');
    let error = decode_partial(&wire, Limits::default());
    assert!(
        matches!(error, Err(CodecError::HeaderLineTooLong { limit: l }) if l == limit),
        "{error:?}"
    );
}

#[test]
fn endless_header_line_fails_when_fed_in_chunks() {
    let mut codec = StompCodec::new(SMALL);
    let mut buf = BytesMut::from(&b"SEND\n"[..]);
    let mut fed = 0;
    let error = loop {
        match codec.decode(&mut buf) {
            Ok(None) => {
                buf.extend_from_slice(b"abc");
                fed += 3;
            }
            Ok(Some(item)) => panic!("unexpected {item:?}"),
            Err(error) => break error,
        }
    };
    assert!(matches!(error, CodecError::HeaderLineTooLong { limit: 64 }));
    assert!(fed > 64 && fed <= 64 + 3, "failed after {fed} octets");
}

#[test]
fn a_trailing_cr_is_not_counted_until_it_proves_not_to_be_an_eol() {
    let mut wire = b"SEND\n".to_vec();
    wire.resize(5 + 64, b'k');
    wire[5 + 1] = b':';
    wire.push(b'\r');
    assert!(matches!(decode_partial(&wire, SMALL), Ok(None)));
    wire.extend_from_slice(b"\n\n\0");
    assert!(matches!(
        decode_partial(&wire, SMALL),
        Ok(Some(Item::Frame(_)))
    ));
}

#[test]
fn complete_header_line_over_the_limit_fails() {
    let wire = format!("SEND\nk:{}\n\n\0", "v".repeat(63));
    let error = first_error_with(wire.as_bytes(), SMALL, Version::V1_2);
    assert!(
        matches!(error, CodecError::HeaderLineTooLong { limit: 64 }),
        "{error:?}"
    );
    let wire = format!("SEND\nk:{}\n\n\0", "v".repeat(62));
    assert!(matches!(
        decode_partial(wire.as_bytes(), SMALL),
        Ok(Some(_))
    ));
}

#[test]
fn long_command_line_fails_as_a_long_line() {
    let wire = "X".repeat(65);
    let error = decode_partial(wire.as_bytes(), SMALL);
    assert!(
        matches!(error, Err(CodecError::HeaderLineTooLong { limit: 64 })),
        "{error:?}"
    );
}

#[test]
fn frame_without_nul_fails_once_past_the_frame_limit() {
    let limits = Limits {
        max_body: 10_000,
        ..SMALL
    };
    let mut wire = b"SEND\n\n".to_vec();
    wire.resize(512, b'b');
    assert!(matches!(decode_partial(&wire, limits), Ok(None)));
    wire.push(b'b');
    let error = decode_partial(&wire, limits);
    assert!(
        matches!(error, Err(CodecError::FrameTooLarge { limit: 512 })),
        "{error:?}"
    );
}

#[test]
fn frame_of_exactly_the_limit_decodes() {
    let limits = Limits {
        max_body: 10_000,
        ..SMALL
    };
    let mut wire = b"SEND\n\n".to_vec();
    wire.resize(511, b'b');
    wire.push(0);
    assert!(matches!(
        decode_partial(&wire, limits),
        Ok(Some(Item::Frame(_)))
    ));
}

#[test]
fn content_length_frame_over_the_limit_fails_before_its_body_arrives() {
    let limits = Limits {
        max_body: 10_000,
        ..SMALL
    };
    let error = decode_partial(b"SEND\ncontent-length:600\n\n", limits);
    assert!(
        matches!(error, Err(CodecError::FrameTooLarge { limit: 512 })),
        "{error:?}"
    );
}

#[test]
fn content_length_over_the_body_limit_fails_at_once() {
    // No blank line and no body yet: the header line alone is enough.
    let error = decode_partial(b"SEND\ncontent-length:257\n", SMALL);
    assert!(
        matches!(error, Err(CodecError::BodyTooLarge { limit: 256 })),
        "{error:?}"
    );
    let error = decode_partial(b"SEND\ncontent-length:99999999999999999999999999\n", SMALL);
    assert!(
        matches!(error, Err(CodecError::BodyTooLarge { limit: 256 })),
        "{error:?}"
    );
}

#[test]
fn nul_delimited_body_over_the_body_limit_fails_while_buffering() {
    let mut wire = b"SEND\n\n".to_vec();
    wire.resize(6 + 256, b'b');
    assert!(matches!(decode_partial(&wire, SMALL), Ok(None)));
    wire.push(b'b');
    let error = decode_partial(&wire, SMALL);
    assert!(
        matches!(error, Err(CodecError::BodyTooLarge { limit: 256 })),
        "{error:?}"
    );
}

#[test]
fn too_many_headers_fails_as_soon_as_counted() {
    let wire = b"SEND\na:1\nb:2\nc:3\nd:4\n";
    assert!(matches!(decode_partial(wire, SMALL), Ok(None)));
    let error = decode_partial(b"SEND\na:1\nb:2\nc:3\nd:4\ne:5\n", SMALL);
    assert!(
        matches!(error, Err(CodecError::TooManyHeaders { limit: 4 })),
        "{error:?}"
    );
}

#[test]
fn limit_errors_do_not_depend_on_chunking() {
    let inputs: Vec<Vec<u8>> = vec![
        format!("SEND\nk:{}\n\n\0", "v".repeat(100)).into_bytes(),
        format!("SEND\nk:{}\r\r\n\n\0", "v".repeat(61)).into_bytes(),
        format!("SEND\n\n{}\0", "b".repeat(600)).into_bytes(),
        format!("SEND\n{}\n\n{}\0", "h:v\n".repeat(3), "b".repeat(600)).into_bytes(),
        b"SEND\na:1\nb:2\nc:3\nd:4\ne:5\n\n\0".to_vec(),
        b"SEND\ncontent-length:300\n\n\0".to_vec(),
    ];
    let tight = Limits {
        max_frame_size: 70,
        max_body: 60,
        ..SMALL
    };
    for limits in [SMALL, tight] {
        for wire in &inputs {
            let whole = decode_chunks(&[wire], Version::V1_2, limits);
            for split in 0..=wire.len() {
                let (head, tail) = wire.split_at(split);
                let chunked = decode_chunks(&[head, tail], Version::V1_2, limits);
                assert_eq!(chunked, whole, "{limits:?} {wire:?} split at {split}");
            }
        }
    }
}

#[test]
fn a_large_frame_fed_one_byte_at_a_time_is_scanned_once() {
    // Rescanning from the frame start on every call would take ~2^35 steps here; a resumable
    // scan takes ~2^18 and finishes in well under a second even unoptimised.
    let len = 256 * 1024;
    let mut wire = format!("SEND\ndestination:/q\n{}\n", "h:v\n".repeat(10)).into_bytes();
    wire.resize(wire.len() + len, b'b');
    wire.push(0);
    let mut codec = StompCodec::default();
    let mut buf = BytesMut::new();
    let mut frames = 0;
    for &byte in &wire {
        buf.extend_from_slice(&[byte]);
        if let Some(Item::Frame(frame)) = codec.decode(&mut buf).expect("valid frame") {
            assert_eq!(frame.body.len(), len);
            frames += 1;
        }
    }
    assert_eq!(frames, 1);
}
