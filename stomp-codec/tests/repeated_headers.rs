//! Repeated headers are all kept, in order, and lookups see the first (STOMP 1.2 "Repeated
//! Header Entries").

mod common;

use bytes::BytesMut;
use common::decode_one;
use stomp_codec::{Version, encode_frame};

#[test]
fn repeated_header_keeps_all_and_first_wins() {
    let decoded = decode_one(b"MESSAGE\nfoo:World\nfoo:Hello\n\n\0");
    assert_eq!(decoded.headers.get("foo"), Some("World"));
    let all: Vec<_> = decoded.headers.iter().collect();
    assert_eq!(all, vec![("foo", "World"), ("foo", "Hello")]);
}

#[test]
fn repeated_headers_re_encode_in_order() {
    let wire = b"MESSAGE\nfoo:World\nfoo:Hello\n\n\0";
    let mut dst = BytesMut::new();
    encode_frame(&decode_one(wire), Version::V1_2, &mut dst);
    assert_eq!(&dst[..], wire);
}

#[test]
fn empty_values_are_kept() {
    let decoded = decode_one(b"SEND\nempty:\n\n\0");
    assert_eq!(decoded.headers.get("empty"), Some(""));
}
