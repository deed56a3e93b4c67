//! The frame reader against tungstenite's client (a real implementation's masked frames, fed
//! split at every byte), and our encoding read back by tungstenite's client; protocol
//! violations built by hand.

use std::io::{self, Cursor, Read, Write};

use bytes::BytesMut;
use tungstenite::protocol::{Role, WebSocket};
use tungstenite::{Bytes, Message};

use super::*;

/// A byte sink for tungstenite's client side: what it writes is collected.
#[derive(Default)]
struct Sink(Vec<u8>);

impl Read for Sink {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err(io::ErrorKind::WouldBlock.into())
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What tungstenite's client puts on the wire for `messages` (masked, as clients must).
fn client_bytes(messages: Vec<Message>) -> Vec<u8> {
    let mut client = WebSocket::from_raw_socket(Sink::default(), Role::Client, None);
    for m in messages {
        client.write(m).expect("client writes");
    }
    client.flush().expect("client flushes");
    std::mem::take(&mut client.get_mut().0)
}

/// Feeds `bytes` in pieces of `step`, collecting STOMP input, replies and what was seen.
fn feed_in_steps(bytes: &[u8], step: usize) -> Result<(Vec<u8>, Vec<u8>, Fed), Violation> {
    let mut reader = FrameReader::new(1024 * 1024);
    let mut stomp = BytesMut::new();
    let mut reply = Vec::new();
    let mut seen = Fed::default();
    for piece in bytes.chunks(step) {
        let fed = reader.feed(piece, &mut stomp, &mut reply)?;
        seen.data |= fed.data;
        seen.liveness |= fed.liveness;
        seen.close |= fed.close;
        if fed.close {
            break;
        }
    }
    Ok((stomp.to_vec(), reply, seen))
}

#[test]
fn payloads_of_text_and_binary_messages_arrive_in_order_however_the_bytes_split() {
    let big = vec![b'x'; 70_000];
    let wire = client_bytes(vec![
        Message::text("SEND\ndestination:/topic/a\n\nhi\0"),
        Message::binary(vec![0u8, 1, 2, 255]),
        Message::binary(vec![b'y'; 300]),
        Message::binary(big.clone()),
    ]);
    let mut expected = b"SEND\ndestination:/topic/a\n\nhi\0".to_vec();
    expected.extend_from_slice(&[0, 1, 2, 255]);
    expected.extend_from_slice(&[b'y'; 300]);
    expected.extend_from_slice(&big);
    for step in [1, 2, 3, 5, 13, 1000, wire.len()] {
        let (stomp, reply, fed) = feed_in_steps(&wire, step).expect("valid frames");
        assert!(
            stomp == expected,
            "payload differs when fed {step} bytes at a time"
        );
        assert!(reply.is_empty());
        assert!(fed.data && !fed.liveness && !fed.close);
    }
}

#[test]
fn a_fragmented_message_is_its_fragments_payloads_in_order() {
    // FIN=0 text "ab", continuation "cd", FIN=1 continuation "ef"; mask 1,2,3,4.
    let mask = [1u8, 2, 3, 4];
    let mut wire = Vec::new();
    for (first, payload) in [(0x01u8, b"ab"), (0x00, b"cd"), (0x80, b"ef")] {
        wire.extend_from_slice(&[first, 0x80 | 2]);
        wire.extend_from_slice(&mask);
        wire.extend(payload.iter().zip(mask).map(|(b, m)| b ^ m));
    }
    let (stomp, _, fed) = feed_in_steps(&wire, 1).expect("valid fragments");
    assert_eq!(stomp, b"abcdef");
    assert!(fed.data);
}

#[test]
fn a_ping_is_answered_with_a_pong_carrying_its_payload() {
    let wire = client_bytes(vec![Message::Ping(Bytes::from_static(b"are you there"))]);
    for step in [1, 4, wire.len()] {
        let (stomp, reply, fed) = feed_in_steps(&wire, step).expect("valid ping");
        assert!(stomp.is_empty());
        assert!(fed.liveness && !fed.data);
        let mut expected = vec![0x8A, 13];
        expected.extend_from_slice(b"are you there");
        assert_eq!(reply, expected, "fed {step} bytes at a time");
    }
    let (_, reply, fed) =
        feed_in_steps(&client_bytes(vec![Message::Pong(Bytes::new())]), 1).expect("valid pong");
    assert!(fed.liveness && reply.is_empty());
}

#[test]
fn a_close_frame_ends_the_stream_and_what_follows_is_not_read() {
    let mut wire = client_bytes(vec![Message::Close(None)]);
    wire.extend(client_bytes(vec![Message::text("SEND\n\n\0")]));
    let (stomp, _, fed) = feed_in_steps(&wire, wire.len()).expect("valid close");
    assert!(fed.close);
    assert!(stomp.is_empty());
}

/// A masked client frame header with the given first byte and payload length (7-bit form).
fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut wire = vec![first, 0x80 | payload.len() as u8, 0, 0, 0, 0];
    wire.extend_from_slice(payload);
    wire
}

#[test]
fn protocol_violations_are_refused() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("unmasked", vec![0x81, 2, b'h', b'i']),
        ("reserved bits", frame(0x81 | 0x40, b"hi")),
        ("continuation first", frame(0x80, b"hi")),
        ("unknown opcode", frame(0x83, b"hi")),
        ("fragmented ping", frame(0x09, b"hi")),
        ("oversized ping", {
            let mut w = vec![0x89, 0x80 | 126, 0, 126, 0, 0, 0, 0];
            w.extend_from_slice(&[0; 126]);
            w
        }),
        ("new message inside a fragmented one", {
            let mut w = frame(0x01, b"a");
            w.extend(frame(0x81, b"b"));
            w
        }),
    ];
    for (what, wire) in cases {
        let result = feed_in_steps(&wire, 1);
        let error = result.expect_err(what);
        assert_eq!(error.code, CLOSE_PROTOCOL_ERROR, "{what}");
    }
}

/// `payload` as one masked client frame (7-bit or 16-bit length), opcode and FIN in `first`.
fn masked(first: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [7u8, 1, 200, 3];
    let mut wire = vec![first];
    if payload.len() < 126 {
        wire.push(0x80 | payload.len() as u8);
    } else {
        wire.push(0x80 | 126);
        wire.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    }
    wire.extend_from_slice(&mask);
    wire.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
    wire
}

#[test]
fn text_is_checked_for_utf8_across_fragments_and_reads_and_binary_is_not() {
    let text = "SEND\ndestination:/topic/é\n\n€ 𝄞\0".as_bytes();
    // One text message in three fragments, cut inside the two-byte and the four-byte character,
    // with a ping between two of them; then a binary message of bytes that are not UTF-8.
    let cut_a = text.iter().position(|&b| b == 0xC3).expect("an é") + 1;
    let cut_b = text.len() - 3;
    let mut wire = masked(0x01, &text[..cut_a]);
    wire.extend(masked(0x89, b"p"));
    wire.extend(masked(0x00, &text[cut_a..cut_b]));
    wire.extend(masked(0x80, &text[cut_b..]));
    wire.extend(masked(0x82, &[0xFF, 0xFE, 0xC3]));
    for step in [1, 2, 3, 7, wire.len()] {
        let (stomp, _, _) = feed_in_steps(&wire, step).expect("valid text and any binary");
        let mut expected = text.to_vec();
        expected.extend_from_slice(&[0xFF, 0xFE, 0xC3]);
        assert_eq!(stomp, expected, "fed {step} bytes at a time");
    }
    let refused = [
        (
            "a byte that never starts a character",
            masked(0x81, b"SEND\n\xFF\0"),
        ),
        ("an overlong encoding", masked(0x81, &[b'a', 0xC0, 0x80])),
        ("a surrogate", masked(0x81, &[0xED, 0xA0, 0x80])),
        (
            "a character cut by the message's end",
            masked(0x81, &text[..cut_a]),
        ),
        ("a bad byte in a continuation", {
            let mut w = masked(0x01, b"ok");
            w.extend(masked(0x80, &[0x80]));
            w
        }),
    ];
    for (what, wire) in refused {
        for step in [1, wire.len()] {
            let error = feed_in_steps(&wire, step).expect_err(what);
            assert_eq!(error.code, CLOSE_NOT_UTF8, "{what}: {error}");
        }
    }
}

#[test]
fn a_close_frame_carries_its_code_and_a_reason_cut_to_fit() {
    let mut out = Vec::new();
    encode_close(&mut out, CLOSE_NOT_UTF8, &"é".repeat(100));
    let mut client = WebSocket::from_raw_socket(Cursor::new(out), Role::Client, None);
    match client.read().expect("a close frame") {
        Message::Close(Some(close)) => {
            assert_eq!(u16::from(close.code), CLOSE_NOT_UTF8);
            assert_eq!(close.reason.len(), 122, "123 bytes would cut a character");
        }
        other => panic!("expected a close frame with a code, got {other:?}"),
    }
}

#[test]
fn a_frame_over_the_limit_is_refused_at_its_header() {
    let mut reader = FrameReader::new(1000);
    // Header only: 64-bit length 1,001, masked; no payload sent.
    let mut wire = vec![0x82, 0x80 | 127];
    wire.extend_from_slice(&1001u64.to_be_bytes());
    wire.extend_from_slice(&[0; 4]);
    let error = reader
        .feed(&wire, &mut BytesMut::new(), &mut Vec::new())
        .expect_err("over the limit");
    assert!(error.to_string().contains("over the limit"), "{error}");
    assert_eq!(error.code, CLOSE_TOO_BIG);
    let mut at_limit = FrameReader::new(1000);
    let mut wire = vec![0x82, 0x80 | 126];
    wire.extend_from_slice(&1000u16.to_be_bytes());
    wire.extend_from_slice(&[0; 4]);
    at_limit
        .feed(&wire, &mut BytesMut::new(), &mut Vec::new())
        .expect("a frame at the limit is fine");
}

#[test]
fn our_messages_read_back_through_a_real_client_as_text_or_binary() {
    let sizes = [0usize, 1, 125, 126, 65_535, 65_536, 100_000];
    let mut out = BytesMut::new();
    for &n in &sizes {
        encode_message(&mut out, &vec![b'a'; n]);
    }
    encode_message(&mut out, &[0xFF, 0x00, 0x80]);
    out.extend_from_slice(&CLOSE_FRAME);
    let mut client = WebSocket::from_raw_socket(Cursor::new(out.to_vec()), Role::Client, None);
    for &n in &sizes {
        match client.read().expect("a message") {
            Message::Text(text) => assert_eq!(text.len(), n),
            other => panic!("expected text of {n} bytes, got {other:?}"),
        }
    }
    match client.read().expect("a message") {
        Message::Binary(data) => assert_eq!(&data[..], &[0xFF, 0x00, 0x80]),
        other => panic!("expected binary, got {other:?}"),
    }
    assert!(matches!(client.read(), Ok(Message::Close(None))));
}
