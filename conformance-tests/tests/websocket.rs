//! STOMP over WebSocket at `/ws`: subprotocol negotiation, text and binary messages, frames
//! batched into or split across messages, text-vs-binary outbound framing, HTTP refusals, and
//! interplay with TCP clients.

use conformance_tests::client::connect_frame;
use conformance_tests::frame::{send, subscribe};
use conformance_tests::ws::{ALL_SUBPROTOCOLS, WsClient};
use conformance_tests::{Broker, Command, FrameExt, WAIT, assert_broker_serves};
use tokio_tungstenite::tungstenite;

fn connect_bytes(login: &str) -> String {
    format!("CONNECT\naccept-version:1.0,1.1,1.2\nhost:localhost\nlogin:{login}\n\n\0")
}

fn http_status(result: Result<WsClient, tungstenite::Error>) -> u16 {
    match result {
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(e) => panic!("expected an HTTP refusal, got {e}"),
        Ok(client) => panic!(
            "handshake accepted (protocol {:?}), expected an HTTP refusal",
            client.protocol
        ),
    }
}

#[tokio::test]
async fn each_stomp_subprotocol_is_negotiated() {
    let broker = Broker::start(&[]);
    for protocol in ALL_SUBPROTOCOLS {
        let mut client = WsClient::open(&broker.ws_url(), &[protocol], None)
            .await
            .unwrap_or_else(|e| panic!("{protocol}: {e}"));
        assert_eq!(client.protocol.as_deref(), Some(protocol));
        client.send_text(&connect_bytes("ws")).await;
        client.expect(Command::Connected).await;
    }
}

#[tokio::test]
async fn one_of_several_offered_subprotocols_is_chosen() {
    let broker = Broker::start(&[]);
    let client = WsClient::open(&broker.ws_url(), &ALL_SUBPROTOCOLS, None)
        .await
        .expect("handshake");
    let chosen = client.protocol.as_deref().expect("a subprotocol is chosen");
    assert!(ALL_SUBPROTOCOLS.contains(&chosen), "chose {chosen:?}");
}

#[tokio::test]
async fn handshake_without_subprotocol_is_accepted() {
    let broker = Broker::start(&[]);
    let mut client = WsClient::open(&broker.ws_url(), &[], None)
        .await
        .expect("handshake without Sec-WebSocket-Protocol");
    assert_eq!(client.protocol, None);
    client.send_text(&connect_bytes("spring")).await;
    let connected = client.expect(Command::Connected).await;
    assert_eq!(connected.value("version"), "1.2");
}

#[tokio::test]
async fn text_and_binary_messages_are_both_accepted() {
    let broker = Broker::start(&[]);
    let mut client = WsClient::open(&broker.ws_url(), &["v12.stomp"], None)
        .await
        .expect("handshake");
    client.send_binary(connect_bytes("bin").as_bytes()).await;
    client.expect(Command::Connected).await;
    client
        .send_text("SUBSCRIBE\nid:s\ndestination:/topic/ws.mixed\nreceipt:sub\n\n\0")
        .await;
    client.expect(Command::Receipt).await;
    client
        .send_binary(b"SEND\ndestination:/topic/ws.mixed\n\nvia binary\0")
        .await;
    client
        .send_text("SEND\ndestination:/topic/ws.mixed\n\nvia text\0")
        .await;
    assert_eq!(client.expect(Command::Message).await.text(), "via binary");
    assert_eq!(client.expect(Command::Message).await.text(), "via text");
}

#[tokio::test]
async fn several_frames_in_one_message_are_all_processed() {
    let broker = Broker::start(&[]);
    let mut client = WsClient::open(&broker.ws_url(), &["v12.stomp"], None)
        .await
        .expect("handshake");
    client
        .send_text(&format!(
            "{}SUBSCRIBE\nid:s\ndestination:/topic/ws.batch\n\n\0\
             SEND\ndestination:/topic/ws.batch\n\none\0\n\
             SEND\ndestination:/topic/ws.batch\nreceipt:done\n\ntwo\0",
            connect_bytes("batch")
        ))
        .await;
    client.expect(Command::Connected).await;
    let mut bodies = Vec::new();
    let mut receipt = false;
    while bodies.len() < 2 || !receipt {
        let frame = client.recv_frame().await;
        match frame.command {
            Command::Message => bodies.push(frame.text()),
            Command::Receipt => receipt = true,
            _ => panic!("unexpected {}", frame.describe()),
        }
    }
    assert_eq!(bodies, ["one", "two"]);
}

#[tokio::test]
async fn frame_split_across_messages_is_reassembled() {
    let broker = Broker::start(&[]);
    let mut subscriber = broker.client("tcp-sub").await;
    subscriber.subscribe("s", "/topic/ws.split").await;
    let mut client = WsClient::connect(&broker.ws_url(), "splitter").await;
    // stomp.js splits outgoing frames into 16 KiB text messages.
    let body: String = (0..100 * 1024)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let frame = send("/topic/ws.split", body.as_bytes()).header("receipt", "big");
    let bytes = conformance_tests::wire::encode(&frame, conformance_tests::Version::V1_2);
    let text = String::from_utf8(bytes).expect("ASCII frame");
    let mut rest = text.as_str();
    let mut pieces = 0;
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(rest.len().min(16 * 1024));
        client.send_text(chunk).await;
        rest = tail;
        pieces += 1;
    }
    assert!(pieces >= 7);
    let receipt = client.expect(Command::Receipt).await;
    assert_eq!(receipt.value("receipt-id"), "big");
    let message = subscriber.expect_message().await;
    assert_eq!(message.body.len(), body.len());
    assert!(message.body[..] == *body.as_bytes(), "body differs");
}

#[tokio::test]
async fn utf8_message_arrives_as_text_and_binary_body_as_binary() {
    let broker = Broker::start(&[]);
    let mut client = WsClient::connect(&broker.ws_url(), "kinds").await;
    client
        .request(subscribe("s", "/topic/ws.kinds"), "sub")
        .await;
    let mut publisher = broker.client("pub").await;
    publisher.publish("/topic/ws.kinds", "héllo wörld").await;
    publisher
        .publish("/topic/ws.kinds", [0xff, 0xfe, 0x00, 0x80, 0xc3])
        .await;

    let (text_frame, is_text) = client.recv_frame_within(WAIT).await.expect("MESSAGE");
    assert_eq!(text_frame.text(), "héllo wörld");
    assert!(is_text, "UTF-8 MESSAGE should be a text WebSocket message");
    let (binary_frame, is_text) = client.recv_frame_within(WAIT).await.expect("MESSAGE");
    assert_eq!(&binary_frame.body[..], &[0xff, 0xfe, 0x00, 0x80, 0xc3]);
    assert!(
        !is_text,
        "non-UTF-8 MESSAGE must be a binary WebSocket message"
    );
}

#[tokio::test]
async fn heart_beat_is_a_newline_text_message() {
    let broker = Broker::start(&["--heartbeat", "200,200"]);
    let mut client = WsClient::open(&broker.ws_url(), &["v12.stomp"], None)
        .await
        .expect("handshake");
    client
        .handshake(connect_frame(
            Command::Connect,
            &[("accept-version", "1.2"), ("heart-beat", "0,200")],
        ))
        .await;
    let beat = client
        .recv_message(std::time::Duration::from_secs(1))
        .await
        .expect("a heart-beat within 1 s");
    assert!(
        beat.frame.is_none(),
        "expected a heart-beat, got {:?}",
        beat.frame
    );
    assert!(beat.text, "heart-beats are text messages");
}

#[tokio::test]
async fn wrong_path_is_404() {
    let broker = Broker::start(&[]);
    let url = format!("ws://{}/stomp", broker.http_addr);
    assert_eq!(
        http_status(WsClient::open(&url, &["v12.stomp"], None).await),
        404
    );
}

#[tokio::test]
async fn foreign_origin_is_403() {
    let broker = Broker::start(&["--ws-allowed-origin", "http://good.example"]);
    let status = http_status(
        WsClient::open(
            &broker.ws_url(),
            &["v12.stomp"],
            Some("http://evil.example"),
        )
        .await,
    );
    assert_eq!(status, 403);
}

#[tokio::test]
async fn allowed_origin_is_accepted() {
    let broker = Broker::start(&["--ws-allowed-origin", "http://good.example"]);
    let mut client = WsClient::open(
        &broker.ws_url(),
        &["v12.stomp"],
        Some("http://good.example"),
    )
    .await
    .expect("allowed origin");
    client.send_text(&connect_bytes("good")).await;
    client.expect(Command::Connected).await;
}

#[tokio::test]
async fn tcp_and_websocket_clients_see_each_others_messages() {
    let broker = Broker::start(&[]);
    let mut ws = WsClient::connect(&broker.ws_url(), "ws-user").await;
    ws.request(subscribe("s", "/topic/ws.cross"), "sub").await;
    let mut tcp = broker.client("tcp-user").await;
    tcp.subscribe("s", "/topic/ws.cross").await;

    tcp.publish("/topic/ws.cross", "from tcp").await;
    assert_eq!(ws.expect(Command::Message).await.text(), "from tcp");
    assert_eq!(tcp.expect_message().await.text(), "from tcp");

    // No receipt: the echo to the WS client's own subscription may come before it.
    ws.send(&send("/topic/ws.cross", "from ws")).await;
    assert_eq!(tcp.expect_message().await.text(), "from ws");
    assert_eq!(ws.expect(Command::Message).await.text(), "from ws");
}

#[tokio::test]
async fn error_over_websocket_then_close() {
    let broker = Broker::start(&[]);
    let mut client = WsClient::connect(&broker.ws_url(), "bad").await;
    client.send_text("SEND\n\nno destination\0").await;
    client.expect_error("missing header destination").await;
    client.expect_closed(WAIT).await;
    assert_broker_serves(&broker).await;
}

/// RFC 6455 section 8.1: a text message that is not UTF-8 fails the connection with 1007; the
/// broker stays up and a message accepted before it was delivered.
#[tokio::test]
async fn text_message_that_is_not_utf8_closes_with_1007() {
    let broker = Broker::start(&[]);
    let mut watcher = WsClient::connect(&broker.ws_url(), "watcher").await;
    watcher.request(subscribe("s", "/topic/u"), "sub").await;
    let mut client = WsClient::connect(&broker.ws_url(), "bad-utf8").await;
    client.request(send("/topic/u", "first"), "r").await;
    client
        .send_raw_frame(0x1, b"SEND\ndestination:/topic/u\n\n\xC0\x80\0", false)
        .await;
    let (code, reason) = client.expect_close_frame(WAIT).await;
    assert_eq!(code, 1007, "{reason}");
    assert!(reason.contains("UTF-8"), "{reason}");
    assert_eq!(watcher.expect(Command::Message).await.text(), "first");
    // The same bytes in a binary message are a body like any other.
    let mut binary = WsClient::connect(&broker.ws_url(), "binary").await;
    binary
        .send_raw_frame(0x2, b"SEND\ndestination:/topic/u\n\n\xC0\x80\0", false)
        .await;
    assert_eq!(
        &watcher.expect(Command::Message).await.body[..],
        b"\xC0\x80"
    );
    assert_broker_serves(&broker).await;
}

/// A frame with a reserved bit set (no extension was negotiated) fails with 1002.
#[tokio::test]
async fn protocol_error_closes_with_1002() {
    let broker = Broker::start(&[]);
    let mut client = WsClient::connect(&broker.ws_url(), "rsv").await;
    client.send_raw_frame(0x1, b"\n", true).await;
    let (code, reason) = client.expect_close_frame(WAIT).await;
    assert_eq!(code, 1002, "{reason}");
    assert!(reason.contains("reserved bits"), "{reason}");
    assert_broker_serves(&broker).await;
}

async fn ws_with_heart_beat(broker: &Broker, heart_beat: &str) -> WsClient {
    let mut client = WsClient::open(&broker.ws_url(), &["v12.stomp"], None)
        .await
        .expect("handshake");
    let reply = client
        .handshake(connect_frame(
            Command::Connect,
            &[("accept-version", "1.2"), ("heart-beat", heart_beat)],
        ))
        .await;
    assert_eq!(reply.command, Command::Connected, "{}", reply.describe());
    client
}

#[tokio::test]
async fn websocket_pings_keep_a_session_alive() {
    // Negotiated 200 ms × 1.5: without traffic the session would end after 300 ms.
    let broker = Broker::start(&["--heartbeat", "200,200", "--heartbeat-grace", "1.5"]);
    let mut client = ws_with_heart_beat(&broker, "100,0").await;
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_millis(1000) {
        client.send_ping().await;
        match client
            .recv_message(std::time::Duration::from_millis(100))
            .await
        {
            Err(conformance_tests::RecvError::Timeout) => {}
            Ok(received) => panic!("unexpected {:?}", received.frame),
            Err(e) => panic!("dropped while pinging: {e}"),
        }
    }
    client
        .request(send("/topic/ws.pinged", "alive"), "after-pings")
        .await;
}

#[tokio::test]
async fn silent_websocket_session_is_dropped_with_heart_beat_timeout() {
    let broker = Broker::start(&["--heartbeat", "200,200", "--heartbeat-grace", "1.5"]);
    let mut client = ws_with_heart_beat(&broker, "100,0").await;
    client.expect_error("heart-beat timeout").await;
    client.expect_closed(WAIT).await;
}

#[tokio::test]
async fn newline_text_message_is_a_client_heart_beat() {
    let broker = Broker::start(&["--heartbeat", "200,200", "--heartbeat-grace", "1.5"]);
    let mut client = ws_with_heart_beat(&broker, "100,0").await;
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_millis(1000) {
        client.send_text("\n").await;
        match client
            .recv_message(std::time::Duration::from_millis(100))
            .await
        {
            Err(conformance_tests::RecvError::Timeout) => {}
            Ok(received) => panic!("unexpected {:?}", received.frame),
            Err(e) => panic!("dropped while heart-beating: {e}"),
        }
    }
    client
        .request(send("/topic/ws.beating", "alive"), "after-beats")
        .await;
}

#[tokio::test]
async fn closing_the_websocket_ends_the_session_and_requeues_unacked_messages() {
    let broker = Broker::start(&[]);
    let mut ws = WsClient::connect(&broker.ws_url(), "ws-consumer").await;
    ws.request(
        subscribe("s", "/queue/ws.requeue").header("ack", "client-individual"),
        "sub",
    )
    .await;
    let mut tcp = broker.client("tcp").await;
    tcp.publish("/queue/ws.requeue", "unacked").await;
    let first = ws.expect(Command::Message).await;
    drop(ws);

    tcp.subscribe("s", "/queue/ws.requeue").await;
    let again = tcp.expect_message().await;
    assert_eq!(again.text(), "unacked");
    assert_eq!(again.value("redelivered"), "true");
    assert_eq!(again.value("message-id"), first.value("message-id"));
}

#[tokio::test]
async fn idle_websocket_is_closed_after_connect_timeout() {
    let broker = Broker::start(&["--connect-timeout", "300ms"]);
    let mut client = WsClient::open(&broker.ws_url(), &["v12.stomp"], None)
        .await
        .expect("handshake");
    client.expect_error("connect timeout").await;
    client.expect_closed(WAIT).await;
}
