//! Configured limits on connections and subscriptions: the connection or SUBSCRIBE over the
//! limit is refused, and everything within it keeps working.

use conformance_tests::client::connect_frame;
use conformance_tests::frame::subscribe;
use conformance_tests::{
    Broker, Command, FrameExt, RecvError, TcpClient, WAIT, assert_broker_serves,
};

/// The connection over the limit must not be served: refused, closed, or ERROR then closed.
async fn assert_not_served(broker: &Broker) {
    let Ok(mut extra) = TcpClient::try_open(broker.stomp_addr).await else {
        return;
    };
    let _ = extra
        .try_send_raw(&conformance_tests::wire::encode(
            &connect_frame(
                Command::Connect,
                &[
                    ("accept-version", "1.2"),
                    ("host", "localhost"),
                    ("login", "extra"),
                ],
            ),
            conformance_tests::Version::V1_2,
        ))
        .await;
    match extra.recv_frame_within(WAIT).await {
        Err(RecvError::Closed(_)) => {}
        Ok(frame) if frame.command == Command::Error => extra.expect_closed(WAIT).await,
        Ok(frame) => panic!("connection over the limit was served: {}", frame.describe()),
        Err(e) => panic!("connection over the limit left hanging: {e}"),
    }
}

#[tokio::test]
async fn connection_over_max_connections_is_refused() {
    let broker = Broker::start(&["--max-connections", "2"]);
    let mut first = broker.client("first").await;
    let mut second = broker.client("second").await;
    first.subscribe("s", "/topic/limits").await;

    assert_not_served(&broker).await;

    // The first two are unaffected.
    second.publish("/topic/limits", "still fine").await;
    assert_eq!(first.expect_message().await.text(), "still fine");
}

#[tokio::test]
async fn closed_connection_frees_its_slot() {
    let broker = Broker::start(&["--max-connections", "2"]);
    let first = broker.client("first").await;
    let _second = broker.client("second").await;
    assert_not_served(&broker).await;
    first.disconnect().await;
    // The slot is released asynchronously; retry briefly.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Ok(mut client) = TcpClient::try_open(broker.stomp_addr).await {
            let reply = client
                .handshake(connect_frame(
                    Command::Connect,
                    &[("accept-version", "1.2"), ("host", "localhost")],
                ))
                .await;
            if reply.command == Command::Connected {
                return;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no connection accepted after one of two closed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn websocket_connections_count_toward_max_connections() {
    let broker = Broker::start(&["--max-connections", "1"]);
    let _tcp = broker.client("tcp").await;
    let refused =
        match conformance_tests::WsClient::open(&broker.ws_url(), &["v12.stomp"], None).await {
            Err(_) => true,
            Ok(mut ws) => {
                ws.send_text("CONNECT\naccept-version:1.2\nhost:localhost\n\n\0")
                    .await;
                match ws.recv_frame_within(WAIT).await {
                    Ok((frame, _)) => frame.command == Command::Error,
                    Err(RecvError::Closed(_)) => true,
                    Err(e) => panic!("WebSocket over the limit left hanging: {e}"),
                }
            }
        };
    assert!(
        refused,
        "a WebSocket session was served over --max-connections 1"
    );
}

#[tokio::test]
async fn subscription_over_max_subscriptions_is_refused() {
    let broker = Broker::start(&["--max-subscriptions", "2"]);
    let mut client = broker.client("c").await;
    client.subscribe("a", "/topic/a").await;
    client.subscribe("b", "/topic/b").await;
    client.send(&subscribe("c", "/topic/c")).await;
    client.expect_error("too many subscriptions").await;
    client.expect_closed(WAIT).await;
    assert_broker_serves(&broker).await;
}

#[tokio::test]
async fn unsubscribe_frees_a_subscription_slot() {
    let broker = Broker::start(&["--max-subscriptions", "2"]);
    let mut client = broker.client("c").await;
    client.subscribe("a", "/topic/a").await;
    client.subscribe("b", "/topic/b").await;
    client.unsubscribe("a").await;
    client.subscribe("c", "/topic/c").await;
}

#[tokio::test]
async fn subscription_limit_is_per_session() {
    let broker = Broker::start(&["--max-subscriptions", "2"]);
    let mut first = broker.client("first").await;
    first.subscribe("a", "/topic/a").await;
    first.subscribe("b", "/topic/b").await;
    let mut second = broker.client("second").await;
    second.subscribe("a", "/topic/a").await;
    second.subscribe("b", "/topic/b").await;
}
