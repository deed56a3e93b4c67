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
