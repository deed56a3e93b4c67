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
const FLOOD_MESSAGES: usize = 320;
const FLOOD_BODY: usize = 32 * 1024;

/// 32 messages of the flood: more than one batch, far less than the flood.
const SMALL_OUTBOUND: [&str; 4] = [
    "--outbound-max-frames",
    "256",
    "--outbound-max-bytes",
    "1048576",
];

/// Messages published between two drains of the fast subscriber.
const BATCH: usize = 8;

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

/// Publishes the flood to `/topic/flood` in batches, draining a fast subscriber after each,
/// and checks that subscriber got every message in order; returns the publisher.
///
/// The fast subscriber is paced end to end (at most one batch, 256 KiB, in flight) so it is a
/// reader that keeps up by construction; only the stalled subscriber can overflow.
async fn flood_past(broker: &Broker) -> TcpClient {
    let mut fast = broker.client("fast").await;
    fast.subscribe("s", "/topic/flood").await;
    let mut publisher = broker.client("publisher").await;
    let body = vec![b'f'; FLOOD_BODY];
    for batch in 0..FLOOD_MESSAGES / BATCH {
        let seqs = batch * BATCH..(batch + 1) * BATCH;
        for i in seqs.clone() {
            publisher
                .send(&send("/topic/flood", &body).header("x-seq", i.to_string()))
                .await;
        }
        for i in seqs {
            let message = fast
                .recv_frame_within(WAIT)
                .await
                .unwrap_or_else(|e| panic!("fast subscriber stalled at message {i}: {e}"));
            assert_eq!(message.command, Command::Message, "{}", message.describe());
            assert_eq!(
                message.value("x-seq"),
                i.to_string(),
                "fast subscriber lost messages"
            );
        }
    }

    // Both keep working after the flood.
    publisher.publish("/topic/flood", "after").await;
    assert_eq!(fast.expect_message().await.text(), "after");
    publisher
}

#[tokio::test]
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
    // Counted as a drop and as the session's close reason.
    broker
        .metric_reaches("stompbox_drops_total{reason=\"slow_consumer\"}", 1.0)
        .await;
    broker
        .metric_reaches("stompbox_closes_total{reason=\"slow_consumer\"}", 1.0)
        .await;
}

#[tokio::test]
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

#[tokio::test]
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
    // The flood and `flood_past`'s closing "after" reached its outbox or were dropped there.
    let dropped = FLOOD_MESSAGES + 1 - delivered;
    let counted = broker
        .metric("stompbox_drops_total{reason=\"outbox_full\"}")
        .await;
    assert_eq!(counted, dropped as f64, "outbox_full drops counted");
    // Still connected and served once it reads again.
    publisher.publish("/topic/flood", "marker").await;
    assert_eq!(slow.expect_message().await.text(), "marker");
}
