//! Graceful shutdown on SIGTERM: every client is told `server shutting down`, the process
//! exits 0 in bounded time, and no new connection is accepted.

use std::time::Duration;

use conformance_tests::ws::WsClient;
use conformance_tests::{Broker, Command, FrameExt, TcpClient, WAIT};

/// Shutdown has this long to finish; the broker's own bound comes from --shutdown-timeout.
const EXIT_WITHIN: Duration = Duration::from_secs(5);

#[tokio::test]
async fn sigterm_tells_clients_and_exits_zero() {
    let mut broker = Broker::start(&["--shutdown-timeout", "2s"]);
    let mut tcp = broker.client("tcp").await;
    tcp.subscribe("s", "/topic/shutdown").await;
    let mut idle = broker.client("idle").await;
    let mut ws = WsClient::connect(&broker.ws_url(), "ws").await;

    broker.sigterm();
    tcp.expect_error("server shutting down").await;
    idle.expect_error("server shutting down").await;
    ws.expect_error("server shutting down").await;
    tcp.expect_closed(WAIT).await;
    idle.expect_closed(WAIT).await;
    ws.expect_closed(WAIT).await;

    let status = broker
        .wait_exit(EXIT_WITHIN)
        .await
        .unwrap_or_else(|| panic!("broker still running {EXIT_WITHIN:?} after SIGTERM"));
    assert!(status.success(), "exit status {status}");
}

#[tokio::test]
async fn sigterm_with_no_clients_exits_zero_promptly() {
    let mut broker = Broker::start(&[]);
    let status = broker
        .stop_gracefully(EXIT_WITHIN)
        .await
        .expect("exited after SIGTERM");
    assert!(status.success(), "exit status {status}");
}

#[tokio::test]
async fn new_connections_are_refused_after_shutdown() {
    let mut broker = Broker::start(&["--shutdown-timeout", "2s"]);
    let mut client = broker.client("c").await;
    broker.sigterm();
    client.expect_error("server shutting down").await;
    // The listener is closed from the moment shutdown starts: a new connection either fails
    // outright or is closed without ever being served.
    match TcpClient::try_open(broker.stomp_addr).await {
        Err(_) => {}
        Ok(mut late) => {
            let _ = late
                .try_send_raw(b"CONNECT\naccept-version:1.2\nhost:localhost\n\n\0")
                .await;
            match late.recv_frame_within(WAIT).await {
                Err(conformance_tests::RecvError::Closed(_)) => {}
                Ok(frame) if frame.command == Command::Error => {}
                other => panic!("a connection made during shutdown was served: {other:?}"),
            }
        }
    }
    let status = broker.wait_exit(EXIT_WITHIN).await.expect("exited");
    assert!(status.success(), "exit status {status}");
    assert!(
        TcpClient::try_open(broker.stomp_addr).await.is_err(),
        "port still accepting after exit"
    );
}

#[tokio::test]
async fn messages_routed_before_shutdown_are_delivered_first() {
    let mut broker = Broker::start(&["--shutdown-timeout", "2s"]);
    let mut subscriber = broker.client("sub").await;
    subscriber.subscribe("s", "/topic/last.words").await;
    let mut publisher = broker.client("pub").await;
    for i in 0..10 {
        publisher.publish("/topic/last.words", i.to_string()).await;
    }
    broker.sigterm();
    for i in 0..10 {
        let frame = subscriber.recv_frame().await;
        assert_eq!(
            frame.command,
            Command::Message,
            "message {i}: {}",
            frame.describe()
        );
        assert_eq!(frame.text(), i.to_string());
    }
    subscriber.expect_error("server shutting down").await;
    let status = broker.wait_exit(EXIT_WITHIN).await.expect("exited");
    assert!(status.success());
}
