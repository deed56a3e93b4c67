//! The `/ws` upgrade handshake as raw HTTP/1.1 (the broker's own, `transport::ws_upgrade`):
//! RFC 6455's sample key answered with its sample accept value and the best STOMP subprotocol
//! offered, and each malformed request refused with the status axum's upgrade gave (405, 400).

use conformance_tests::Broker;
use conformance_tests::ws::raw_upgrade;
use tokio::net::TcpStream;

const KEY: &str = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==";
const VERSION: &str = "Sec-WebSocket-Version: 13";

/// Sends `method /ws` with `lines` as headers; returns the status and the response.
async fn upgrade(broker: &Broker, method: &str, lines: &[&str]) -> (u16, String) {
    let mut stream = TcpStream::connect(broker.http_addr)
        .await
        .expect("connect to the HTTP listener");
    raw_upgrade(&mut stream, method, lines).await
}

#[tokio::test]
async fn the_rfc_sample_key_gets_its_accept_value_and_the_best_subprotocol() {
    let broker = Broker::start(&[]);
    let (status, head) = upgrade(
        &broker,
        "GET",
        &[
            "Upgrade: websocket",
            "Connection: keep-alive, Upgrade",
            KEY,
            VERSION,
            "Sec-WebSocket-Protocol: v10.stomp, v12.stomp",
        ],
    )
    .await;
    assert_eq!(status, 101, "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(
        lower.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{head}"
    );
    assert!(
        lower.contains("sec-websocket-protocol: v12.stomp"),
        "{head}"
    );
}

#[tokio::test]
async fn malformed_upgrades_are_refused() {
    let broker = Broker::start(&[]);
    let upgrade_headers = ["Upgrade: websocket", "Connection: Upgrade"];
    let cases: [(&str, &str, Vec<&str>, u16); 5] = [
        (
            "POST",
            "not a GET",
            vec![upgrade_headers[0], upgrade_headers[1], KEY, VERSION],
            405,
        ),
        (
            "GET",
            "no key",
            vec![upgrade_headers[0], upgrade_headers[1], VERSION],
            400,
        ),
        (
            "GET",
            "version 8",
            vec![
                upgrade_headers[0],
                upgrade_headers[1],
                KEY,
                "Sec-WebSocket-Version: 8",
            ],
            400,
        ),
        (
            "GET",
            "no Upgrade header",
            vec![upgrade_headers[1], KEY, VERSION],
            400,
        ),
        (
            "GET",
            "Connection: close",
            vec![upgrade_headers[0], "Connection: close", KEY, VERSION],
            400,
        ),
    ];
    for (method, what, lines, expected) in cases {
        let (status, head) = upgrade(&broker, method, &lines).await;
        assert_eq!(status, expected, "{what}: {head}");
    }
}

/// A client that sends its first STOMP frame in the same write as the upgrade request (not
/// waiting for the 101): hyper reads both, and the bytes past the request head reach the
/// session before anything read from the socket afterwards (`transport::ws`, which keeps the
/// upgraded `TcpStream` itself and is handed those bytes beside it).
#[tokio::test]
async fn a_connect_frame_sent_with_the_upgrade_request_is_answered() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let broker = Broker::start(&[]);
    let mut stream = TcpStream::connect(broker.http_addr)
        .await
        .expect("connect to the HTTP listener");
    let mut bytes = b"GET /ws HTTP/1.1\r\nHost: localhost\r\n".to_vec();
    for line in conformance_tests::ws::UPGRADE_LINES {
        bytes.extend_from_slice(line.as_bytes());
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(b"\r\n");
    let connect = b"CONNECT\naccept-version:1.2\nhost:/\nlogin:early\n\n\0";
    // One masked text frame (a client's frames are masked; RFC 6455 5.3).
    let mask = [0x11, 0x22, 0x33, 0x44];
    bytes.push(0x81);
    bytes.push(0x80 | u8::try_from(connect.len()).expect("a short frame"));
    bytes.extend_from_slice(&mask);
    bytes.extend(connect.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    stream.write_all(&bytes).await.expect("write");

    let mut received = Vec::new();
    let deadline = tokio::time::Instant::now() + conformance_tests::WAIT;
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(&received).contains("CONNECTED") {
        let n = tokio::time::timeout_at(deadline, stream.read(&mut chunk))
            .await
            .expect("CONNECTED within the wait")
            .expect("read");
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&received));
        received.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 101"), "{text}");
    assert!(text.contains("version:1.2"), "{text}");
}
