//! CONNECT and STOMP: version negotiation, the CONNECTED headers, and what happens to
//! connections that do not (or twice) connect.

use std::time::{Duration, Instant};

use conformance_tests::client::connect_frame;
use conformance_tests::{Broker, Command, FrameExt, TcpClient, WAIT, assert_broker_serves};

async fn negotiate(broker: &Broker, accept_version: Option<&str>) -> conformance_tests::Frame {
    let mut client = TcpClient::open(broker.stomp_addr).await;
    let mut headers = vec![("host", "localhost"), ("login", "alice")];
    if let Some(v) = accept_version {
        headers.push(("accept-version", v));
    }
    client
        .handshake(connect_frame(Command::Connect, &headers))
        .await
}

#[tokio::test]
async fn absent_accept_version_negotiates_1_0() {
    let broker = Broker::start(&[]);
    let reply = negotiate(&broker, None).await;
    assert_eq!(reply.command, Command::Connected, "{}", reply.describe());
    // STOMP 1.2: a 1.0 server may omit the header, but Stompbox always sends it.
    assert_eq!(reply.value("version"), "1.0");
}

#[tokio::test]
async fn highest_common_version_is_chosen() {
    let broker = Broker::start(&[]);
    for (offered, expected) in [
        ("1.0", "1.0"),
        ("1.1", "1.1"),
        ("1.2", "1.2"),
        ("1.0,1.1", "1.1"),
        ("1.1,1.2", "1.2"),
        ("1.0,1.1,1.2", "1.2"),
        ("1.2,1.0", "1.2"),
        ("1.1,2.0", "1.1"),
    ] {
        let reply = negotiate(&broker, Some(offered)).await;
        assert_eq!(
            reply.command,
            Command::Connected,
            "{offered}: {}",
            reply.describe()
        );
        assert_eq!(reply.value("version"), expected, "accept-version:{offered}");
    }
}

#[tokio::test]
async fn no_common_version_is_refused_with_supported_versions() {
    let broker = Broker::start(&[]);
    let mut client = TcpClient::open(broker.stomp_addr).await;
    let reply = client
        .handshake(connect_frame(
            Command::Connect,
            &[("accept-version", "2.0,3.1"), ("host", "localhost")],
        ))
        .await;
    assert_eq!(reply.command, Command::Error, "{}", reply.describe());
    assert_eq!(reply.value("message"), "unsupported protocol version");
    let mut versions: Vec<&str> = reply.value("version").split(',').map(str::trim).collect();
    versions.sort_unstable();
    assert_eq!(versions, ["1.0", "1.1", "1.2"]);
    client.expect_closed(WAIT).await;
    assert_broker_serves(&broker).await;
}

#[tokio::test]
async fn stomp_frame_connects_like_connect() {
    let broker = Broker::start(&[]);
    let mut client = TcpClient::open(broker.stomp_addr).await;
    let reply = client
        .handshake(connect_frame(
            Command::Stomp,
            &[
                ("accept-version", "1.2"),
                ("host", "localhost"),
                ("login", "bob"),
            ],
        ))
        .await;
    assert_eq!(reply.command, Command::Connected, "{}", reply.describe());
    assert_eq!(reply.value("version"), "1.2");
    assert_eq!(reply.value("user-name"), "bob");
    client.publish("/topic/after.stomp", "works").await;
}

#[tokio::test]
async fn connected_carries_version_session_server_heart_beat_and_user_name() {
    let broker = Broker::start(&[]);
    let first = broker.client("alice").await;
    let second = broker.client("alice").await;
    let a = first.connected.as_ref().expect("connected");
    let b = second.connected.as_ref().expect("connected");

    assert_eq!(a.value("version"), "1.2");
    assert!(!a.value("session").is_empty());
    assert_ne!(
        a.value("session"),
        b.value("session"),
        "session ids are unique"
    );
    assert!(
        a.value("server").starts_with("stompbox/"),
        "server header {:?}",
        a.value("server")
    );
    let heart_beat = a.value("heart-beat");
    let parts: Vec<&str> = heart_beat.split(',').collect();
    assert_eq!(parts.len(), 2, "heart-beat {heart_beat:?}");
    for part in parts {
        part.trim()
            .parse::<u64>()
            .unwrap_or_else(|_| panic!("heart-beat {heart_beat:?} is not two numbers"));
    }
    assert_eq!(a.value("user-name"), "alice");
}

#[tokio::test]
async fn absent_login_is_guest_in_dev_mode() {
    let broker = Broker::start(&[]);
    let client = TcpClient::connect_with(
        broker.stomp_addr,
        &[("accept-version", "1.2"), ("host", "localhost")],
    )
    .await;
    let connected = client.connected.as_ref().expect("connected");
    assert_eq!(connected.value("user-name"), "guest");
}

#[tokio::test]
async fn spring_style_connect_without_host_is_accepted() {
    let broker = Broker::start(&[]);
    let mut client = TcpClient::open(broker.stomp_addr).await;
    // Byte for byte what Spring's WebSocketStompClient sends (no host header).
    client
        .send_raw(b"CONNECT\nlogin:spring\naccept-version:1.1,1.2\nheart-beat:10000,10000\n\n\0")
        .await;
    let reply = client.expect(Command::Connected).await;
    assert_eq!(reply.value("version"), "1.2");
    assert_eq!(reply.value("user-name"), "spring");
}

#[tokio::test]
async fn frame_before_connect_is_not_connected_error() {
    let broker = Broker::start(&[]);
    let mut client = TcpClient::open(broker.stomp_addr).await;
    client
        .send_raw(b"SEND\ndestination:/topic/x\n\nearly\0")
        .await;
    client.expect_error("not connected").await;
    client.expect_closed(WAIT).await;
    assert_broker_serves(&broker).await;
}

#[tokio::test]
async fn subscribe_before_connect_is_not_connected_error() {
    let broker = Broker::start(&[]);
    let mut client = TcpClient::open(broker.stomp_addr).await;
    client
        .send_raw(b"SUBSCRIBE\nid:0\ndestination:/topic/x\n\n\0")
        .await;
    client.expect_error("not connected").await;
    client.expect_closed(WAIT).await;
}

#[tokio::test]
async fn second_connect_is_already_connected_error() {
    let broker = Broker::start(&[]);
    let mut client = broker.client("alice").await;
    client
        .send_raw(b"CONNECT\naccept-version:1.2\nhost:localhost\n\n\0")
        .await;
    client.expect_error("already connected").await;
    client.expect_closed(WAIT).await;
    assert_broker_serves(&broker).await;
}

#[tokio::test]
async fn second_stomp_frame_is_already_connected_error() {
    let broker = Broker::start(&[]);
    let mut client = broker.client("alice").await;
    client
        .send_raw(b"STOMP\naccept-version:1.2\nhost:localhost\n\n\0")
        .await;
    client.expect_error("already connected").await;
    client.expect_closed(WAIT).await;
}

#[tokio::test]
async fn idle_socket_is_closed_after_connect_timeout() {
    let broker = Broker::start(&["--connect-timeout", "300ms"]);
    let started = Instant::now();
    let mut idle = TcpClient::open(broker.stomp_addr).await;
    idle.expect_error("connect timeout").await;
    idle.expect_closed(WAIT).await;
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(250),
        "closed after {elapsed:?}, before the 300ms timeout"
    );
    assert!(
        elapsed < Duration::from_secs(3),
        "closed only after {elapsed:?}"
    );
    assert_broker_serves(&broker).await;
}

#[tokio::test]
async fn connect_within_timeout_is_not_closed_later() {
    let broker = Broker::start(&["--connect-timeout", "300ms"]);
    let mut client = broker.client("alice").await;
    client.expect_silence(Duration::from_millis(600)).await;
    client.publish("/topic/still.here", "yes").await;
}

#[tokio::test]
async fn partial_connect_does_not_beat_the_connect_timeout() {
    let broker = Broker::start(&["--connect-timeout", "300ms"]);
    let mut slowloris = TcpClient::open(broker.stomp_addr).await;
    slowloris.send_raw(b"CONNECT\naccept-version:1.2\n").await;
    slowloris.expect_error("connect timeout").await;
    slowloris.expect_closed(WAIT).await;
}
