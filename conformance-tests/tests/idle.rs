//! Idle sessions park (issue 17 item 1): a session quiet for a second leaves its task and waits
//! as a boxed record, woken by its socket, its outbox or its next deadline
//! (`stompbox_sessions_parked` counts them). A parked session must behave exactly as a busy
//! one: it receives what is routed to it, answers frames, sends heart-beats on time and drops
//! a silent peer on time, over TCP and over WebSocket.

use std::time::{Duration, Instant};

use conformance_tests::client::connect_frame;
use conformance_tests::frame;
use conformance_tests::wire::Received;
use conformance_tests::{Broker, Command, FrameExt, RecvError, TcpClient, WAIT, WsClient};

const PARKED: &str = "stompbox_sessions_parked";

/// Well past the broker's quiet period (a second), with room for a loaded machine.
const PAST_QUIET: Duration = Duration::from_millis(1600);

#[tokio::test]
async fn quiet_sessions_park_and_still_receive_and_answer() {
    let broker = Broker::start(&[]);
    let mut clients = Vec::new();
    for i in 0..20 {
        let mut client = TcpClient::connect(broker.stomp_addr, &format!("idle{i}")).await;
        client.subscribe("news", "/topic/idle.news").await;
        clients.push(client);
    }
    let mut ws = WsClient::connect(&broker.ws_url(), "idle-ws").await;
    ws.request(frame::subscribe("news", "/topic/idle.news"), "subscribed")
        .await;
    tokio::time::sleep(PAST_QUIET).await;
    broker.metric_reaches(PARKED, 21.0).await;

    // A delivery wakes each parked session through its outbox.
    let mut publisher = broker.client("publisher").await;
    publisher.publish("/topic/idle.news", "wake up").await;
    for client in &mut clients {
        let message = client.expect_message().await;
        assert_eq!(&message.body[..], b"wake up");
    }
    let message = ws.expect(Command::Message).await;
    assert_eq!(&message.body[..], b"wake up");

    // Quiet again, parked again; a frame wakes a parked session through its socket.
    tokio::time::sleep(PAST_QUIET).await;
    broker.metric_reaches(PARKED, 22.0).await;
    for client in &mut clients {
        let frame = connect_frame(Command::Disconnect, &[("receipt", "bye")]);
        client.send(&frame).await;
        client.expect_receipt("bye").await;
    }
    let frame = connect_frame(Command::Disconnect, &[]);
    ws.request(frame, "bye").await;
    // Closed sessions leave no parked record behind.
    let deadline = tokio::time::Instant::now() + WAIT;
    while broker.metric(PARKED).await > 1.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "parked records left"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The server's heart-beats a client receives in `window`, by arrival time.
async fn beats_during(client: &mut TcpClient, window: Duration) -> Vec<Instant> {
    let started = Instant::now();
    let mut beats = Vec::new();
    while started.elapsed() < window {
        match client.recv_item(Duration::from_millis(100)).await {
            Ok(Received::HeartBeat) => beats.push(Instant::now()),
            Ok(Received::Frame { frame, .. }) => panic!("unexpected {}", frame.describe()),
            Err(RecvError::Timeout) => {}
            Err(e) => panic!("{e}"),
        }
    }
    beats
}

#[tokio::test]
async fn a_parked_session_heart_beats_on_time() {
    let broker = Broker::start(&[]);
    // The client wants a beat every second and sends none: between beats the session parks.
    let mut client = TcpClient::connect_with(
        broker.stomp_addr,
        &[
            ("accept-version", "1.2"),
            ("host", "localhost"),
            ("login", "beats"),
            ("heart-beat", "0,1000"),
        ],
    )
    .await;
    tokio::time::sleep(PAST_QUIET).await;
    broker.metric_reaches(PARKED, 1.0).await;
    // The beats that came meanwhile wait in the socket: read, they would count as one burst.
    while client.recv_item(Duration::from_millis(20)).await.is_ok() {}
    let beats = beats_during(&mut client, Duration::from_millis(4500)).await;
    assert!(
        (4..=5).contains(&beats.len()),
        "{} heart-beats in 4.5 s at a 1 s interval",
        beats.len()
    );
    for gap in beats.windows(2).map(|w| w[1] - w[0]) {
        assert!(
            gap >= Duration::from_millis(800) && gap <= Duration::from_millis(1300),
            "heart-beat gap {gap:?} for a 1 s interval from a parked session"
        );
    }
}

#[tokio::test]
async fn a_parked_session_drops_a_silent_peer_on_time() {
    let broker = Broker::start(&[]);
    let connected = Instant::now();
    // The client promises a beat every second and sends none: 1 s × the default grace of 2.
    let mut client = TcpClient::connect_with(
        broker.stomp_addr,
        &[
            ("accept-version", "1.2"),
            ("host", "localhost"),
            ("login", "silent"),
            ("heart-beat", "1000,0"),
        ],
    )
    .await;
    broker.metric_reaches(PARKED, 1.0).await;
    client.expect_error("heart-beat timeout").await;
    client.expect_closed(WAIT).await;
    let elapsed = connected.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1950),
        "dropped after {elapsed:?}, before 1 s × 2"
    );
    assert!(
        elapsed <= Duration::from_millis(2800),
        "dropped only after {elapsed:?}"
    );
}

/// A session that goes quiet in the middle of a frame parks with the part it has (an idle
/// session's buffers are given back at parking only when they hold nothing), and the frame
/// completes when the rest comes.
#[tokio::test]
async fn a_frame_split_across_a_parking_arrives_whole() {
    let broker = Broker::start(&[]);
    let mut subscriber = broker.client("split-reader").await;
    subscriber.subscribe("s", "/topic/idle.split").await;
    let mut sender = TcpClient::connect(broker.stomp_addr, "split-sender").await;
    let body = "a body sent in two parts, a quiet period apart";
    let whole = format!(
        "SEND\ndestination:/topic/idle.split\nreceipt:sent\ncontent-length:{}\n\n{body}\0",
        body.len()
    );
    let (head, tail) = whole.as_bytes().split_at(whole.len() / 2);
    sender.send_raw(head).await;
    tokio::time::sleep(PAST_QUIET).await;
    broker.metric_reaches(PARKED, 2.0).await;
    sender.expect_silence(Duration::from_millis(100)).await;
    sender.send_raw(tail).await;
    sender.expect_receipt("sent").await;
    let message = subscriber.expect_message().await;
    assert_eq!(&message.body[..], body.as_bytes());
}
