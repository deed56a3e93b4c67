//! Properties over generated input: any frame the wire can carry encodes and decodes back to
//! itself for each version; arbitrary bytes never panic the decoder; and decoding does not
//! depend on how the bytes are chunked.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use stomp_codec::fuzzing::{self, Outcome, after_round_trip, decode_chunks};
use stomp_codec::{Command, Frame, Headers, Item, Limits, Version, encode_frame};

/// Characters that exercise escaping and line handling, mixed into otherwise arbitrary text.
fn header_char() -> impl Strategy<Value = char> {
    prop_oneof![
        3 => any::<char>(),
        1 => prop::sample::select(vec![':', '\n', '\r', '\\', 'c', 'n', 'r', 'é', '☃', '\0']),
    ]
}

fn text(min: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(header_char(), min..12).prop_map(String::from_iter)
}

/// Makes a header writable for `command` at `version`. Unescaped frames (1.0, and CONNECT,
/// STOMP, CONNECTED always) cannot carry ':' or LF in a name or LF in a value; wherever CR is
/// not escaped a value cannot end in CR (it would read as a CRLF line end). The encoder's own
/// `content-length` is left to it.
fn writable(command: Command, version: Version, name: String, value: String) -> (String, String) {
    let escaped = command.escapes_headers() && version != Version::V1_0;
    let cr_escaped = command.escapes_headers() && version == Version::V1_2;
    let mut name = if escaped {
        name
    } else {
        name.replace([':', '\n'], "")
    };
    if name.is_empty() || name == "content-length" {
        name.insert(0, 'x');
    }
    let mut value = if escaped {
        value
    } else {
        value.replace('\n', "")
    };
    if !cr_escaped {
        while value.ends_with('\r') {
            value.pop();
        }
    }
    (name, value)
}

fn frame_for(version: Version) -> impl Strategy<Value = Frame> {
    (
        prop::sample::select(Command::ALL.to_vec()),
        prop::collection::vec((text(1), text(0)), 0..6),
        prop::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(move |(command, headers, body)| Frame {
            command,
            headers: headers
                .into_iter()
                .map(|(name, value)| writable(command, version, name, value))
                .collect::<Headers>(),
            body: Bytes::from(body),
        })
}

fn version() -> impl Strategy<Value = Version> {
    prop::sample::select(vec![Version::V1_0, Version::V1_1, Version::V1_2])
}

fn encoded(frames: &[Frame], version: Version) -> BytesMut {
    let mut wire = BytesMut::new();
    for frame in frames {
        encode_frame(frame, version, &mut wire);
    }
    wire
}

fn round_trips(frame: Frame, version: Version) -> Result<(), TestCaseError> {
    let wire = encoded(std::slice::from_ref(&frame), version);
    let decoded = decode_chunks(&[&wire], version, Limits::default());
    prop_assert_eq!(
        decoded,
        vec![Outcome::Item(Item::Frame(after_round_trip(&frame)))]
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn frames_round_trip_at_1_2(frame in frame_for(Version::V1_2)) {
        round_trips(frame, Version::V1_2)?;
    }

    #[test]
    fn frames_round_trip_at_1_1(frame in frame_for(Version::V1_1)) {
        round_trips(frame, Version::V1_1)?;
    }

    #[test]
    fn frames_round_trip_at_1_0(frame in frame_for(Version::V1_0)) {
        round_trips(frame, Version::V1_0)?;
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_chunking_does_not_matter(
        bytes in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        fuzzing::check(&bytes);
    }

    #[test]
    fn a_frame_stream_decodes_the_same_in_two_arbitrary_chunks(
        version in version(),
        frames in prop::collection::vec(frame_for(Version::V1_2), 1..4),
        split in any::<prop::sample::Index>(),
    ) {
        // Frames built for 1.2 need not be writable at other versions; that is fine here,
        // where only agreement between chunkings is checked.
        let wire = encoded(&frames, version);
        let at = split.index(wire.len() + 1);
        let whole = decode_chunks(&[&wire], version, Limits::default());
        let chunked = decode_chunks(&[&wire[..at], &wire[at..]], version, Limits::default());
        prop_assert_eq!(chunked, whole);
    }

    #[test]
    fn mutated_frame_streams_decode_the_same_one_byte_at_a_time(
        frames in prop::collection::vec(frame_for(Version::V1_2), 1..3),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
    ) {
        let mut wire = encoded(&frames, Version::V1_2).to_vec();
        for (at, byte) in flips {
            let at = at.index(wire.len());
            wire[at] = byte;
        }
        let whole = decode_chunks(&[&wire], Version::V1_2, fuzzing::FUZZ_LIMITS);
        let bytes: Vec<&[u8]> = wire.chunks(1).collect();
        prop_assert_eq!(decode_chunks(&bytes, Version::V1_2, fuzzing::FUZZ_LIMITS), whole);
        fuzzing::check(&wire);
    }
}
