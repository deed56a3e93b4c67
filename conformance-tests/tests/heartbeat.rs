//! Heart-beats: the negotiation math of STOMP 1.2 ("Heart-beating"), the server's sending rate,
//! and dropping silent clients after interval × grace. Intervals are a few hundred
//! milliseconds so the file runs in seconds.

use std::time::{Duration, Instant};

use conformance_tests::client::connect_frame;
use conformance_tests::wire::Received;
use conformance_tests::{Broker, Command, FrameExt, RecvError, TcpClient, WAIT};

/// Server offers to send every 200 ms and wants something every 200 ms; grace 1.5.
const SERVER: [&str; 4] = ["--heartbeat", "200,200", "--heartbeat-grace", "1.5"];

async fn connect_with_heart_beat(broker: &Broker, heart_beat: &str) -> TcpClient {
    TcpClient::connect_with(
        broker.stomp_addr,
        &[
            ("accept-version", "1.2"),
            ("host", "localhost"),
            ("login", "hb"),
            ("heart-beat", heart_beat),
        ],
    )
    .await
}

fn pair(value: &str) -> (u64, u64) {
    let (x, y) = value
        .split_once(',')
        .unwrap_or_else(|| panic!("heart-beat {value:?} is not x,y"));
    (
        x.trim().parse().expect("number"),
        y.trim().parse().expect("number"),
    )
}

/// What a client computes from its own and the server's heart-beat headers (STOMP 1.2):
/// (interval at which the client must send, interval at which the server will send).
fn client_view(client: (u64, u64), server: (u64, u64)) -> (u64, u64) {
    let (cx, cy) = client;
    let (sx, sy) = server;
    let client_sends = if cx == 0 || sy == 0 { 0 } else { cx.max(sy) };
    let server_sends = if sx == 0 || cy == 0 { 0 } else { sx.max(cy) };
    (client_sends, server_sends)
}

#[tokio::test]
async fn connected_heart_beat_yields_the_negotiated_intervals() {
    let broker = Broker::start(&SERVER);
    // (client heart-beat, expected (client send interval, server send interval))
    for (offer, expected) in [
        ("100,300", (200, 300)),
        ("500,50", (500, 200)),
        ("0,300", (0, 300)),
        ("300,0", (300, 0)),
        ("0,0", (0, 0)),
    ] {
        let client = connect_with_heart_beat(&broker, offer).await;
        let connected = client.connected.as_ref().expect("connected");
        let server = pair(connected.value("heart-beat"));
        assert_eq!(
            client_view(pair(offer), server),
            expected,
            "client heart-beat:{offer}, server answered heart-beat:{}",
            connected.value("heart-beat")
        );
    }
}

#[tokio::test]
async fn absent_heart_beat_header_means_none() {
    let broker = Broker::start(&SERVER);
    let mut client = TcpClient::connect_with(
        broker.stomp_addr,
        &[("accept-version", "1.2"), ("host", "localhost")],
    )
    .await;
    // Neither side heart-beats: the server must not drop a client that never offered to send.
    client.expect_silence(Duration::from_millis(700)).await;
    client.publish("/topic/hb.alive", "yes").await;
}

#[tokio::test]
async fn server_sends_heart_beats_at_the_negotiated_rate() {
    let broker = Broker::start(&SERVER);
    // Client wants one every 300 ms; the server offers 200: negotiated max(200, 300) = 300.
    let mut client = connect_with_heart_beat(&broker, "0,300").await;
    let started = Instant::now();
    let mut beats = Vec::new();
    while started.elapsed() < Duration::from_millis(1600) {
        match client.recv_item(Duration::from_millis(100)).await {
            Ok(Received::HeartBeat) => beats.push(Instant::now()),
            Ok(Received::Frame { frame, .. }) => panic!("unexpected {}", frame.describe()),
            Err(RecvError::Timeout) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert!(
        (3..=7).contains(&beats.len()),
        "{} heart-beats in 1.6 s at a 300 ms interval",
        beats.len()
    );
    for gap in beats.windows(2).map(|w| w[1] - w[0]) {
        assert!(
            gap >= Duration::from_millis(150) && gap <= Duration::from_millis(600),
            "heart-beat gap {gap:?} for a 300 ms interval"
        );
    }
}

#[tokio::test]
async fn server_sends_no_heart_beats_when_the_client_wants_none() {
    let broker = Broker::start(&SERVER);
    let mut client = connect_with_heart_beat(&broker, "0,0").await;
    match client.recv_item(Duration::from_millis(700)).await {
        Err(RecvError::Timeout) => {}
        other => panic!("expected nothing at all, got {other:?}"),
    }
}

#[tokio::test]
async fn silent_client_is_dropped_after_interval_times_grace() {
    let broker = Broker::start(&SERVER);
    let sent_connect = Instant::now();
    // Client promises one every 100 ms; the server wants 200: negotiated 200 ms × 1.5 = 300 ms.
    let mut client = connect_with_heart_beat(&broker, "100,0").await;
    client.expect_error("heart-beat timeout").await;
    client.expect_closed(WAIT).await;
    let elapsed = sent_connect.elapsed();
    assert!(
        elapsed >= Duration::from_millis(270),
        "dropped after {elapsed:?}, before 200 ms × 1.5"
    );
    assert!(
        elapsed <= Duration::from_millis(1500),
        "dropped only after {elapsed:?}"
    );
}

#[tokio::test]
async fn heart_beat_eols_keep_a_quiet_client_alive() {
    let broker = Broker::start(&SERVER);
    let mut client = connect_with_heart_beat(&broker, "100,0").await;
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(1200) {
        client.send_raw(b"\n").await;
        match client.recv_item(Duration::from_millis(100)).await {
            Err(RecvError::Timeout) | Ok(Received::HeartBeat) => {}
            Ok(Received::Frame { frame, .. }) => panic!("unexpected {}", frame.describe()),
            Err(e) => panic!("dropped while sending heart-beats: {e}"),
        }
    }
    client.publish("/topic/hb.alive", "yes").await;
}

#[tokio::test]
async fn frames_keep_a_client_alive_without_eols() {
    let broker = Broker::start(&SERVER);
    let mut client = connect_with_heart_beat(&broker, "100,0").await;
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(1200) {
        client.publish("/topic/hb.traffic", "tick").await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn grace_tolerates_a_late_heart_beat() {
    // 200 ms × 3.0: a client 450 ms late (a throttled background tab) is still alive.
    let broker = Broker::start(&["--heartbeat", "200,200", "--heartbeat-grace", "3.0"]);
    let mut client = connect_with_heart_beat(&broker, "100,0").await;
    match client.recv_item(Duration::from_millis(450)).await {
        Err(RecvError::Timeout) => {}
        other => panic!("expected nothing within the grace period, got {other:?}"),
    }
    client.send_raw(b"\n").await;
    client.publish("/topic/hb.late", "made it").await;
    // Then silence past 600 ms does end it.
    client.expect_error("heart-beat timeout").await;
    client.expect_closed(WAIT).await;
}

#[tokio::test]
async fn first_server_heart_beat_arrives_within_the_interval() {
    let broker = Broker::start(&SERVER);
    let mut client = connect_with_heart_beat(&broker, "0,200").await;
    let first = client
        .recv_item(Duration::from_millis(600))
        .await
        .expect("a heart-beat within 600 ms at a 200 ms interval");
    assert_eq!(first, Received::HeartBeat);
    client.send_raw(b"\n").await;
    let frame = connect_frame(Command::Disconnect, &[("receipt", "end")]);
    client.send(&frame).await;
    client.expect_receipt("end").await;
}

/// Heart-beats the server sends in `window` while the client beats every 100 ms (its side of
/// the bargain for any interval of a second or more).
async fn beats_within(client: &mut TcpClient, window: Duration) -> usize {
    let started = Instant::now();
    let mut beats = 0;
    while started.elapsed() < window {
        client.send_raw(b"\n").await;
        match client.recv_item(Duration::from_millis(100)).await {
            Ok(Received::HeartBeat) => beats += 1,
            Ok(Received::Frame { frame, .. }) => panic!("unexpected {}", frame.describe()),
            Err(RecvError::Timeout) => {}
            Err(e) => panic!("{e}"),
        }
    }
    beats
}

/// Connects asking for a beat every second both ways, checks a spec client computes exactly
/// that from CONNECTED, and that the server beats about once a second; the client, now silent.
async fn one_second_beats_both_ways(broker: &Broker) -> TcpClient {
    let mut client = connect_with_heart_beat(broker, "1000,1000").await;
    let connected = client.connected.as_ref().expect("connected");
    let server = pair(connected.value("heart-beat"));
    assert_eq!(client_view((1000, 1000), server), (1000, 1000));
    let beats = beats_within(&mut client, Duration::from_millis(2600)).await;
    assert!(
        (2..=4).contains(&beats),
        "{beats} heart-beats in 2.6 s at a 1 s interval"
    );
    client
}

/// Issue 17, item 4: with the default configuration a client asking for heart-beats every
/// second gets them every second both ways (the default offer was 10 s, which overrode it).
#[tokio::test]
async fn the_default_broker_honours_a_one_second_ask() {
    let broker = Broker::start(&[]);
    one_second_beats_both_ways(&broker).await;
}

/// Issue 17, item 4: an operator's slower offer (Spring's 10 s) does not override a client
/// asking for faster beats: the server beats every second and drops the client after a
/// second's silence × grace, both directions at the client's figure.
#[tokio::test]
async fn a_faster_ask_than_the_offer_is_honoured_both_ways() {
    let broker = Broker::start(&["--heartbeat", "10000,10000"]);
    let mut client = one_second_beats_both_ways(&broker).await;
    // Now silent: 1 s × the default grace of 2, well inside WAIT (the offer would be 20 s).
    client.expect_error("heart-beat timeout").await;
}

/// Issue 17, item 4: `--heartbeat-min` is the floor under a client's ask, both directions.
#[tokio::test]
async fn heartbeat_min_floors_what_a_client_asks_for() {
    let broker = Broker::start(&["--heartbeat", "10000,10000", "--heartbeat-min", "1500ms"]);
    let client = connect_with_heart_beat(&broker, "100,300").await;
    let connected = client.connected.as_ref().expect("connected");
    assert_eq!(connected.value("heart-beat"), "1500,1500");
    let client = connect_with_heart_beat(&broker, "2000,0").await;
    let connected = client.connected.as_ref().expect("connected");
    let server = pair(connected.value("heart-beat"));
    assert_eq!(client_view((2000, 0), server), (2000, 0));
}
