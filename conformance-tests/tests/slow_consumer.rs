//! A subscriber that stops reading must not hold up anyone else: with policy `disconnect` it
//! gets ERROR `slow consumer` and is closed; with `drop` it loses messages but stays connected.
//! Publishers and other subscribers are unaffected either way.

use std::time::Duration;

use conformance_tests::client::connect_frame;
use conformance_tests::frame::send;
use conformance_tests::{Broker, Command, FrameExt, RecvError, TcpClient, WAIT};
use tokio::net::TcpSocket;
use tokio::time::Instant;

/// About 9.6 MB: overflows a 1 MiB outbound queue plus the kernel's socket buffers (the
/// sender's grows to 4 MiB here) twice over.
const FLOOD_MESSAGES: usize = 300;
const FLOOD_BODY: usize = 32 * 1024;

/// Roomy enough (32 messages) that a subscriber which keeps reading never hits it, even with
/// a debug-build test client, while a stalled one does long before the flood ends.
const SMALL_OUTBOUND: [&str; 4] = [
    "--outbound-max-frames",
    "256",
    "--outbound-max-bytes",
    "1048576",
];

/// The publisher waits for a receipt this often, so the flood runs at the broker's routing
/// speed rather than racing far ahead of a subscriber that does read.
const RECEIPT_EVERY: usize = 16;

/// A connected client whose socket receive buffer is tiny, so the broker sees it stall soon.
async fn stalled_client(broker: &Broker, login: &str) -> TcpClient {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let stream = tokio::time::timeout(WAIT, socket.connect(broker.stomp_addr))
        .await
        .expect("connect in time")
        .expect("connect");
    let mut client = TcpClient::from_stream(stream).expect("stream");
    let reply = client
        .handshake(connect_frame(
            Command::Connect,
            &[
                ("accept-version", "1.2"),
                ("host", "localhost"),
                ("login", login),
            ],
        ))
        .await;
    assert_eq!(reply.command, Command::Connected, "{}", reply.describe());
    client
}

/// Publishes the flood to `/topic/flood` while a fast subscriber drains it; returns once the
/// publisher has the receipt of the last message and the fast subscriber has every message.
async fn flood_past(broker: &Broker) -> TcpClient {
    let mut fast = broker.client("fast").await;
    fast.subscribe("s", "/topic/flood").await;
    let reader = tokio::spawn(async move {
        for i in 0..FLOOD_MESSAGES {
            let message = fast
                .recv_frame_within(Duration::from_secs(20))
                .await
                .unwrap_or_else(|e| panic!("fast subscriber stalled at message {i}: {e}"));
            assert_eq!(message.command, Command::Message, "{}", message.describe());
            assert_eq!(
                message.value("x-seq"),
                i.to_string(),
                "fast subscriber lost messages"
            );
        }
        fast
    });

    let mut publisher = broker.client("publisher").await;
    let body = vec![b'f'; FLOOD_BODY];
    for i in 0..FLOOD_MESSAGES {
        let mut frame = send("/topic/flood", &body).header("x-seq", i.to_string());
        if i + 1 == FLOOD_MESSAGES || i % RECEIPT_EVERY == RECEIPT_EVERY - 1 {
            frame = frame.header("receipt", format!("flood-{i}"));
            publisher.send(&frame).await;
            publisher.expect_receipt(&format!("flood-{i}")).await;
        } else {
            publisher.send(&frame).await;
        }
    }
    let mut fast = tokio::time::timeout(Duration::from_secs(30), reader)
        .await
        .expect("fast subscriber finished in time")
        .expect("fast subscriber task");

    // Both keep working after the flood.
    publisher.publish("/topic/flood", "after").await;
    assert_eq!(fast.expect_message().await.text(), "after");
    publisher
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumer_is_disconnected_with_error_frame() {
    let broker = Broker::start(&SMALL_OUTBOUND);
    let mut slow = stalled_client(&broker, "slow").await;
    slow.subscribe("s", "/topic/flood").await;
    let _publisher = flood_past(&broker).await;

    // Now read what the broker left us: some messages at most, then ERROR and the close.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut delivered = 0;
    let error = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match slow.recv_frame_within(left).await {
            Ok(frame) if frame.command == Command::Message => delivered += 1,
            Ok(frame) if frame.command == Command::Error => break frame,
            Ok(frame) => panic!("unexpected {}", frame.describe()),
            Err(RecvError::Closed(why)) => {
                panic!("closed ({why}) after {delivered} messages without ERROR slow consumer")
            }
            Err(e) => panic!("slow consumer still connected after {delivered} messages: {e}"),
        }
    };
    assert_eq!(
        error.value("message"),
        "slow consumer",
        "{}",
        error.describe()
    );
    assert!(
        delivered < FLOOD_MESSAGES,
        "slow consumer got the whole flood"
    );
    slow.expect_closed(WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_subscribers_and_publisher_are_unaffected_by_a_slow_consumer() {
    let broker = Broker::start(&SMALL_OUTBOUND);
    let mut slow = stalled_client(&broker, "slow").await;
    slow.subscribe("s", "/topic/flood").await;
    // `flood_past` asserts the fast subscriber got every message in order and that publisher
    // and subscriber still work afterwards.
    let mut publisher = flood_past(&broker).await;
    let mut newcomer = broker.client("newcomer").await;
    newcomer.subscribe("s", "/topic/flood").await;
    publisher.publish("/topic/flood", "later").await;
    assert_eq!(newcomer.expect_message().await.text(), "later");
    drop(slow);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_policy_loses_messages_but_keeps_the_slow_consumer() {
    let mut args = SMALL_OUTBOUND.to_vec();
    args.extend(["--slow-consumer", "drop"]);
    let broker = Broker::start(&args);
    let mut slow = stalled_client(&broker, "slow").await;
    slow.subscribe("s", "/topic/flood").await;
    let mut publisher = flood_past(&broker).await;

    // Drain whatever survived; the stream simply ends, with no ERROR.
    let mut delivered = 0;
    while let Ok(frame) = slow.recv_frame_within(Duration::from_millis(500)).await {
        assert_eq!(frame.command, Command::Message, "{}", frame.describe());
        delivered += 1;
    }
    assert!(
        delivered < FLOOD_MESSAGES,
        "nothing was dropped: the test did not overflow the outbound queue"
    );
    // Still connected and served once it reads again.
    publisher.publish("/topic/flood", "marker").await;
    assert_eq!(slow.expect_message().await.text(), "marker");
}
