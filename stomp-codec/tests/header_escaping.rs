//! Header escaping follows the decoder's version: 1.2 `\r \n \c \\`, 1.1 `\n \c \\`, 1.0
//! nothing; CONNECT, STOMP and CONNECTED are never escaped; undefined escapes are errors.

mod common;

use bytes::BytesMut;
use common::{decode_one_at, first_error_with, frame};
use stomp_codec::{CodecError, Command, Limits, Version, encode_frame, encode_header};

const ESCAPED: &[u8] = b"SEND\nkey\\cname:a\\cb\\nc\\\\d\n\n\0";

#[test]
fn v1_2_decodes_all_four_escapes() {
    let decoded = decode_one_at(b"SEND\nk:\\r\\n\\c\\\\\n\n\0", Version::V1_2);
    assert_eq!(decoded.headers.get("k"), Some("\r\n:\\"));
    let decoded = decode_one_at(ESCAPED, Version::V1_2);
    assert_eq!(decoded.headers.get("key:name"), Some("a:b\nc\\d"));
}

#[test]
fn v1_1_decodes_three_escapes_and_rejects_backslash_r() {
    let decoded = decode_one_at(ESCAPED, Version::V1_1);
    assert_eq!(decoded.headers.get("key:name"), Some("a:b\nc\\d"));
    let error = first_error_with(b"SEND\nk:\\r\n\n\0", Limits::default(), Version::V1_1);
    assert!(matches!(error, CodecError::InvalidEscape('r')), "{error:?}");
}

#[test]
fn v1_0_takes_backslashes_literally() {
    let decoded = decode_one_at(ESCAPED, Version::V1_0);
    assert_eq!(decoded.headers.get("key\\cname"), Some("a\\cb\\nc\\\\d"));
    let decoded = decode_one_at(b"SEND\nk:\\x\n\n\0", Version::V1_0);
    assert_eq!(decoded.headers.get("k"), Some("\\x"));
}

#[test]
fn connect_stomp_and_connected_are_never_unescaped() {
    for command in ["CONNECT", "STOMP", "CONNECTED"] {
        let wire = format!("{command}\nlogin:a\\cb\npasscode:p\\x\n\n\0");
        for version in [Version::V1_0, Version::V1_1, Version::V1_2] {
            let decoded = decode_one_at(wire.as_bytes(), version);
            assert_eq!(
                decoded.headers.get("login"),
                Some("a\\cb"),
                "{command} {version}"
            );
            assert_eq!(
                decoded.headers.get("passcode"),
                Some("p\\x"),
                "{command} {version}"
            );
        }
    }
}

#[test]
fn raw_colon_in_a_value_is_accepted() {
    let decoded = decode_one_at(b"SEND\ndestination:/queue/a:b\n\n\0", Version::V1_2);
    assert_eq!(decoded.headers.get("destination"), Some("/queue/a:b"));
}

#[test]
fn undefined_escape_is_an_error() {
    for (wire, bad) in [
        (&b"SEND\nk:\\t\n\n\0"[..], 't'),
        (b"SEND\nk\\x:v\n\n\0", 'x'),
        (b"SEND\nk:\\\xc3\xa9\n\n\0", '\u{e9}'),
        (b"SEND\nk:v\\\n\n\0", '\0'),
    ] {
        let error = first_error_with(wire, Limits::default(), Version::V1_2);
        assert!(
            matches!(error, CodecError::InvalidEscape(c) if c == bad),
            "{wire:?}: {error:?}"
        );
    }
}

#[test]
fn encoding_escapes_per_version() {
    let sent = frame(Command::Send, &[("a:b", "x\ry\nz\\:")], b"");
    let cases: [(Version, &[u8]); 3] = [
        (Version::V1_2, b"SEND\na\\cb:x\\ry\\nz\\\\\\c\n\n\0"),
        (Version::V1_1, b"SEND\na\\cb:x\ry\\nz\\\\\\c\n\n\0"),
        (Version::V1_0, b"SEND\na:b:x\ry\nz\\:\n\n\0"),
    ];
    for (version, wire) in cases {
        let mut dst = BytesMut::new();
        encode_frame(&sent, version, &mut dst);
        assert_eq!(&dst[..], wire, "{version}");
    }
}

#[test]
fn encoding_never_escapes_connect_stomp_or_connected() {
    for command in [Command::Connect, Command::Stomp, Command::Connected] {
        let sent = frame(command, &[("host", "a\\b"), ("login", "x:y")], b"");
        let mut dst = BytesMut::new();
        encode_frame(&sent, Version::V1_2, &mut dst);
        let wire = format!("{command}\nhost:a\\b\nlogin:x:y\n\n\0");
        assert_eq!(&dst[..], wire.as_bytes());
    }
}

#[test]
fn encode_header_writes_one_escaped_line() {
    let mut dst = BytesMut::new();
    encode_header("message-id", "a:b\n", Version::V1_2, &mut dst);
    encode_header("k", "a:b", Version::V1_0, &mut dst);
    assert_eq!(&dst[..], b"message-id:a\\cb\\n\nk:a:b\n");
}

#[test]
fn escaped_unicode_round_trips() {
    let sent = frame(Command::Message, &[("clé:☃", "värde\n☃\\")], b"");
    let mut dst = BytesMut::new();
    encode_frame(&sent, Version::V1_2, &mut dst);
    assert_eq!(decode_one_at(&dst, Version::V1_2), sent);
}
