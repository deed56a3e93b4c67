//! The `/ws` upgrade handshake as raw HTTP/1.1 (the broker's own, `transport::ws_upgrade`):
//! RFC 6455's sample key answered with its sample accept value and the best STOMP subprotocol
//! offered, and each malformed request refused with the status axum's upgrade gave (405, 400).

use std::time::Duration;

use conformance_tests::Broker;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const KEY: &str = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==";
const VERSION: &str = "Sec-WebSocket-Version: 13";

/// Sends `GET /ws` (or `method`) with `lines` as headers; returns the response head.
async fn upgrade(broker: &Broker, method: &str, lines: &[&str]) -> String {
    let mut stream = TcpStream::connect(broker.http_addr)
        .await
        .expect("connect to the HTTP listener");
    let mut request = format!("{method} /ws HTTP/1.1\r\nHost: localhost\r\n");
    for line in lines {
        request.push_str(line);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("request written");
    let mut response = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        let mut chunk = [0u8; 1024];
        while !response.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut chunk).await.expect("read response");
            if n == 0 {
                break;
            }
            response.extend_from_slice(&chunk[..n]);
        }
    })
    .await;
    read.expect("a response head within 10 s");
    String::from_utf8_lossy(&response).into_owned()
}

fn status(head: &str) -> u16 {
    head.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"))
}

#[tokio::test]
async fn the_rfc_sample_key_gets_its_accept_value_and_the_best_subprotocol() {
    let broker = Broker::start(&[]);
    let head = upgrade(
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
    assert_eq!(status(&head), 101, "{head}");
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
        let head = upgrade(&broker, method, &lines).await;
        assert_eq!(status(&head), expected, "{what}: {head}");
    }
}
