//! Helpers shared by the integration tests: decoding loops and the STOMP 1.2 spec examples.
#![allow(dead_code)]

use bytes::{Bytes, BytesMut};
use stomp_codec::fuzzing::{Outcome, decode_chunks};
use stomp_codec::{CodecError, Command, Frame, Item, Limits, StompCodec, Version};
use tokio_util::codec::Decoder;

/// Decodes `bytes` whole at `version` with default limits.
pub fn decode_whole(bytes: &[u8], version: Version) -> Vec<Outcome> {
    decode_chunks(&[bytes], version, Limits::default())
}

/// The frames among `outcomes`; panics on an error.
pub fn frames(outcomes: Vec<Outcome>) -> Vec<Frame> {
    outcomes
        .into_iter()
        .filter_map(|outcome| match outcome {
            Outcome::Item(Item::Frame(frame)) => Some(frame),
            Outcome::Item(Item::HeartBeat) => None,
            Outcome::Error(error) => panic!("unexpected error {error}"),
        })
        .collect()
}

/// Decodes exactly one frame from `bytes` (trailing heart-beats allowed) at `version`.
pub fn decode_one_at(bytes: &[u8], version: Version) -> Frame {
    let mut decoded = frames(decode_whole(bytes, version));
    assert_eq!(decoded.len(), 1, "expected one frame in {bytes:?}");
    decoded.remove(0)
}

pub fn decode_one(bytes: &[u8]) -> Frame {
    decode_one_at(bytes, Version::V1_2)
}

/// Decodes `bytes` whole until the first error, which it returns; panics if there is none.
pub fn first_error_with(bytes: &[u8], limits: Limits, version: Version) -> CodecError {
    let mut codec = StompCodec::new(limits);
    codec.set_version(version);
    let mut buf = BytesMut::from(bytes);
    loop {
        match codec.decode(&mut buf) {
            Ok(Some(_)) => {}
            Ok(None) => panic!("no error decoding {bytes:?}"),
            Err(error) => return error,
        }
    }
}

pub fn first_error(bytes: &[u8]) -> CodecError {
    first_error_with(bytes, Limits::default(), Version::V1_2)
}

/// Builds a frame from a command, header pairs and a body.
pub fn frame(command: Command, headers: &[(&str, &str)], body: &'static [u8]) -> Frame {
    Frame {
        command,
        headers: headers.iter().copied().collect(),
        body: Bytes::from_static(body),
    }
}

/// One example from the STOMP 1.2 specification: its bytes and the frame they mean.
pub struct SpecExample {
    pub name: &'static str,
    pub wire: &'static [u8],
    pub command: Command,
    pub headers: &'static [(&'static str, &'static str)],
    pub body: &'static [u8],
}

impl SpecExample {
    pub fn frame(&self) -> Frame {
        frame(self.command, self.headers, self.body)
    }
}

/// The ERROR example's body from the spec's ERROR section.
const ERROR_BODY: &[u8] = b"The message:\n-----\nMESSAGE\ndestined:/queue/a\nreceipt:message-12345\n\nHello queue a!\n-----\nDid not contain a destination header, which is REQUIRED\nfor message propagation.\n";

/// The example frames of the STOMP 1.2 specification. Where the spec prints DISCONNECT and
/// RECEIPT without the blank line its own grammar requires, the blank line is restored; the
/// ERROR example's content-length is the true octet count of its body.
pub const SPEC_EXAMPLES: &[SpecExample] = &[
    SpecExample {
        name: "CONNECT",
        wire: b"CONNECT\naccept-version:1.2\nhost:stomp.github.org\n\n\0",
        command: Command::Connect,
        headers: &[("accept-version", "1.2"), ("host", "stomp.github.org")],
        body: b"",
    },
    SpecExample {
        name: "STOMP",
        wire: b"STOMP\naccept-version:1.2\nhost:stomp.github.org\n\n\0",
        command: Command::Stomp,
        headers: &[("accept-version", "1.2"), ("host", "stomp.github.org")],
        body: b"",
    },
    SpecExample {
        name: "CONNECTED",
        wire: b"CONNECTED\nversion:1.2\n\n\0",
        command: Command::Connected,
        headers: &[("version", "1.2")],
        body: b"",
    },
    SpecExample {
        name: "CONNECT negotiating versions",
        wire: b"CONNECT\naccept-version:1.0,1.1,2.0\nhost:stomp.github.org\n\n\0",
        command: Command::Connect,
        headers: &[("accept-version", "1.0,1.1,2.0"), ("host", "stomp.github.org")],
        body: b"",
    },
    SpecExample {
        name: "ERROR for unsupported versions",
        wire: b"ERROR\nversion:1.2,2.1\ncontent-type:text/plain\n\nSupported protocol versions are 1.2 2.1\0",
        command: Command::Error,
        headers: &[("version", "1.2,2.1"), ("content-type", "text/plain")],
        body: b"Supported protocol versions are 1.2 2.1",
    },
    SpecExample {
        name: "CONNECTED with heart-beat",
        wire: b"CONNECTED\nversion:1.2\nheart-beat:0,5000\n\n\0",
        command: Command::Connected,
        headers: &[("version", "1.2"), ("heart-beat", "0,5000")],
        body: b"",
    },
    SpecExample {
        name: "SEND",
        wire: b"SEND\ndestination:/queue/a\ncontent-type:text/plain\n\nhello queue a\n\0",
        command: Command::Send,
        headers: &[("destination", "/queue/a"), ("content-type", "text/plain")],
        body: b"hello queue a\n",
    },
    SpecExample {
        name: "SEND with receipt",
        wire: b"SEND\ndestination:/queue/a\nreceipt:message-12345\n\nhello queue a\0",
        command: Command::Send,
        headers: &[("destination", "/queue/a"), ("receipt", "message-12345")],
        body: b"hello queue a",
    },
    SpecExample {
        name: "SUBSCRIBE",
        wire: b"SUBSCRIBE\nid:0\ndestination:/queue/foo\nack:client\n\n\0",
        command: Command::Subscribe,
        headers: &[("id", "0"), ("destination", "/queue/foo"), ("ack", "client")],
        body: b"",
    },
    SpecExample {
        name: "UNSUBSCRIBE",
        wire: b"UNSUBSCRIBE\nid:0\n\n\0",
        command: Command::Unsubscribe,
        headers: &[("id", "0")],
        body: b"",
    },
    SpecExample {
        name: "ACK",
        wire: b"ACK\nid:12345\ntransaction:tx1\n\n\0",
        command: Command::Ack,
        headers: &[("id", "12345"), ("transaction", "tx1")],
        body: b"",
    },
    SpecExample {
        name: "NACK",
        wire: b"NACK\nid:12345\ntransaction:tx1\n\n\0",
        command: Command::Nack,
        headers: &[("id", "12345"), ("transaction", "tx1")],
        body: b"",
    },
    SpecExample {
        name: "BEGIN",
        wire: b"BEGIN\ntransaction:tx1\n\n\0",
        command: Command::Begin,
        headers: &[("transaction", "tx1")],
        body: b"",
    },
    SpecExample {
        name: "COMMIT",
        wire: b"COMMIT\ntransaction:tx1\n\n\0",
        command: Command::Commit,
        headers: &[("transaction", "tx1")],
        body: b"",
    },
    SpecExample {
        name: "ABORT",
        wire: b"ABORT\ntransaction:tx1\n\n\0",
        command: Command::Abort,
        headers: &[("transaction", "tx1")],
        body: b"",
    },
    SpecExample {
        name: "DISCONNECT",
        wire: b"DISCONNECT\nreceipt:77\n\n\0",
        command: Command::Disconnect,
        headers: &[("receipt", "77")],
        body: b"",
    },
    SpecExample {
        name: "RECEIPT for DISCONNECT",
        wire: b"RECEIPT\nreceipt-id:77\n\n\0",
        command: Command::Receipt,
        headers: &[("receipt-id", "77")],
        body: b"",
    },
    SpecExample {
        name: "MESSAGE",
        wire: b"MESSAGE\nsubscription:0\nmessage-id:007\ndestination:/queue/a\ncontent-type:text/plain\n\nhello queue a\0",
        command: Command::Message,
        headers: &[
            ("subscription", "0"),
            ("message-id", "007"),
            ("destination", "/queue/a"),
            ("content-type", "text/plain"),
        ],
        body: b"hello queue a",
    },
    SpecExample {
        name: "RECEIPT",
        wire: b"RECEIPT\nreceipt-id:message-12345\n\n\0",
        command: Command::Receipt,
        headers: &[("receipt-id", "message-12345")],
        body: b"",
    },
    SpecExample {
        name: "ERROR with content-length",
        wire: b"ERROR\nreceipt-id:message-12345\ncontent-type:text/plain\ncontent-length:170\nmessage:malformed frame received\n\nThe message:\n-----\nMESSAGE\ndestined:/queue/a\nreceipt:message-12345\n\nHello queue a!\n-----\nDid not contain a destination header, which is REQUIRED\nfor message propagation.\n\0",
        command: Command::Error,
        headers: &[
            ("receipt-id", "message-12345"),
            ("content-type", "text/plain"),
            ("content-length", "170"),
            ("message", "malformed frame received"),
        ],
        body: ERROR_BODY,
    },
];
