//! A publisher's consecutive SENDs to one topic that arrive in one socket read are routed
//! together, as a run (broker `session/batch.rs`). Every test here writes its frames in one
//! write, so that they arrive in one read, and checks what a run must not change: the order of
//! the publisher's frames across topics, subscriptions, UNSUBSCRIBE, SUBSCRIBE, receipts and
//! transactions; prefetch windows; and the outbound bound, hit in the middle of a run.

use std::time::Duration;

use conformance_tests::frame::{send, subscribe};
use conformance_tests::wire::encode;
use conformance_tests::{Broker, Command, Frame, FrameExt, TcpClient};

/// Writes `frames` with one write: they reach the broker in one read.
async fn one_write(client: &mut TcpClient, frames: &[Frame]) {
    let version = client.version();
    let bytes: Vec<u8> = frames.iter().flat_map(|f| encode(f, version)).collect();
    client.send_raw(&bytes).await;
}

/// The `(subscription, body)` of each MESSAGE up to the RECEIPT `id`, in order.
async fn messages_until_receipt(client: &mut TcpClient, id: &str) -> Vec<(String, String)> {
    let mut got = Vec::new();
    loop {
        let frame = client.recv_frame().await;
        match frame.command {
            Command::Message => got.push((frame.value("subscription").to_owned(), frame.text())),
            Command::Receipt if frame.opt("receipt-id") == Some(id) => return got,
            _ => panic!("expected MESSAGE or RECEIPT {id}, got {}", frame.describe()),
        }
    }
}

/// The bodies of the MESSAGEs on subscription `sub`, in order.
fn bodies(got: &[(String, String)], sub: &str) -> Vec<String> {
    got.iter()
        .filter(|(s, _)| s == sub)
        .map(|(_, b)| b.clone())
        .collect()
}

#[tokio::test]
async fn sends_to_several_topics_in_one_read_keep_their_order() {
    let broker = Broker::start(&[]);
    let mut wildcard = broker.client("wildcard").await;
    wildcard.subscribe("w", "/topic/runs.*").await;
    let mut only_a = broker.client("only-a").await;
    only_a.subscribe("a", "/topic/runs.a").await;
    let mut publisher = broker.client("pub").await;
    // Blocks of 1 to 7 SENDs to one topic, then the other: runs of every length, and a SEND
    // to the other topic between them.
    let mut frames = Vec::new();
    let mut sent = Vec::new();
    for block in 0..60 {
        let topic = if block % 2 == 0 { "runs.a" } else { "runs.b" };
        for _ in 0..(block * 5 % 7 + 1) {
            let body = format!("{topic}/{}", sent.len());
            frames.push(send(&format!("/topic/{topic}"), &body));
            sent.push(body);
        }
    }
    let last = format!("runs.a/{}", sent.len());
    frames.push(send("/topic/runs.a", &last).header("receipt", "end"));
    sent.push(last);
    one_write(&mut publisher, &frames).await;
    publisher.expect_receipt("end").await;

    let mut through_wildcard = Vec::new();
    for _ in 0..sent.len() {
        let message = wildcard.expect_message().await;
        let topic = message.value("destination").trim_start_matches("/topic/");
        assert!(message.text().starts_with(topic), "{}", message.describe());
        through_wildcard.push(message.text());
    }
    assert_eq!(through_wildcard, sent, "every SEND, in the order sent");
    let to_a: Vec<&String> = sent.iter().filter(|b| b.starts_with("runs.a/")).collect();
    let mut got_a = Vec::new();
    for _ in 0..to_a.len() {
        got_a.push(only_a.expect_message().await.text());
    }
    assert_eq!(got_a.iter().collect::<Vec<_>>(), to_a);
    wildcard.expect_no_frame().await;
    only_a.expect_no_frame().await;
}

#[tokio::test]
async fn a_subscribe_or_unsubscribe_in_the_same_read_takes_effect_exactly_there() {
    let broker = Broker::start(&[]);
    let mut client = broker.client("echo").await;
    client.subscribe("s", "/topic/cut").await;
    client.subscribe("u", "/topic/cut").await;
    one_write(
        &mut client,
        &[
            send("/topic/cut", "1"),
            send("/topic/cut", "2"),
            Frame::new(Command::Unsubscribe).header("id", "s"),
            send("/topic/cut", "3"),
            send("/topic/cut", "4"),
            subscribe("t", "/topic/cut"),
            send("/topic/cut", "5"),
            send("/topic/cut", "6").header("receipt", "r"),
        ],
    )
    .await;
    let got = messages_until_receipt(&mut client, "r").await;
    assert_eq!(bodies(&got, "u"), ["1", "2", "3", "4", "5", "6"], "{got:?}");
    assert_eq!(
        bodies(&got, "t"),
        ["5", "6"],
        "only what was sent after SUBSCRIBE"
    );
    // What was on its way to s when it went may be dropped (as for any in-flight topic
    // message); nothing sent after the UNSUBSCRIBE may reach it.
    let to_s = bodies(&got, "s");
    assert!(to_s.iter().all(|b| b == "1" || b == "2"), "{got:?}");
    client.expect_no_frame().await;
}

#[tokio::test]
async fn a_receipt_follows_every_send_before_it_in_the_read() {
    let broker = Broker::start(&[]);
    let mut client = broker.client("echo").await;
    client.subscribe("s", "/topic/receipted").await;
    let mut frames: Vec<Frame> = (0..99)
        .map(|i| send("/topic/receipted", i.to_string()))
        .collect();
    frames.push(send("/topic/receipted", "99").header("receipt", "last"));
    frames.extend((100..110).map(|i| send("/topic/receipted", i.to_string())));
    frames.push(send("/topic/receipted", "110").header("receipt", "after"));
    one_write(&mut client, &frames).await;
    let got = bodies(&messages_until_receipt(&mut client, "last").await, "s");
    let expected: Vec<String> = (0..100).map(|i| i.to_string()).collect();
    assert_eq!(
        got, expected,
        "all 100 MESSAGEs before the RECEIPT of the 100th SEND"
    );
    let got = bodies(&messages_until_receipt(&mut client, "after").await, "s");
    let expected: Vec<String> = (100..111).map(|i| i.to_string()).collect();
    assert_eq!(got, expected);
}

#[tokio::test]
async fn a_commit_publishes_in_place_among_plain_sends() {
    let broker = Broker::start(&[]);
    let mut client = broker.client("echo").await;
    client.subscribe("s", "/topic/tx").await;
    let in_tx = |body: &str| send("/topic/tx", body).header("transaction", "t");
    one_write(
        &mut client,
        &[
            send("/topic/tx", "p1"),
            Frame::new(Command::Begin).header("transaction", "t"),
            in_tx("t1"),
            send("/topic/tx", "p2"),
            in_tx("t2"),
            send("/topic/tx", "p3"),
            Frame::new(Command::Commit).header("transaction", "t"),
            send("/topic/tx", "p4"),
            send("/topic/tx", "p5").header("receipt", "r"),
        ],
    )
    .await;
    let got = bodies(&messages_until_receipt(&mut client, "r").await, "s");
    assert_eq!(got, ["p1", "p2", "p3", "t1", "t2", "p4", "p5"]);
}

#[tokio::test]
async fn a_run_waits_for_a_prefetch_window_in_order() {
    let broker = Broker::start(&[]);
    let mut subscriber = broker.client("sub").await;
    subscriber
        .subscribe_with(
            "s",
            "/topic/window",
            &[("ack", "client-individual"), ("prefetch-count", "4")],
        )
        .await;
    let mut publisher = broker.client("pub").await;
    let frames: Vec<Frame> = (0..40)
        .map(|i| send("/topic/window", i.to_string()))
        .collect();
    one_write(&mut publisher, &frames).await;
    for window in 0..10 {
        let mut held = Vec::new();
        for i in 0..4 {
            let message = subscriber.expect_message().await;
            assert_eq!(message.text(), (window * 4 + i).to_string());
            held.push(message);
        }
        // A full window: nothing more until an ACK.
        subscriber.expect_silence(Duration::from_millis(50)).await;
        for message in &held {
            subscriber.ack(message).await;
        }
    }
    subscriber.expect_no_frame().await;
}

#[tokio::test]
async fn the_outbound_bound_hit_mid_run_drops_the_rest_and_keeps_order() {
    let broker = Broker::start(&["--outbound-max-frames", "8", "--slow-consumer", "drop"]);
    let mut subscriber = broker.client("sub").await;
    subscriber.subscribe("s", "/topic/bounded").await;
    let mut publisher = broker.client("pub").await;
    let mut frames: Vec<Frame> = (0..100)
        .map(|i| send("/topic/bounded", i.to_string()))
        .collect();
    frames.push(send("/topic/bounded", "100").header("receipt", "r"));
    one_write(&mut publisher, &frames).await;
    publisher.expect_receipt("r").await;
    let mut got = Vec::new();
    while let Ok(message) = subscriber
        .recv_frame_within(Duration::from_millis(500))
        .await
    {
        assert_eq!(message.command, Command::Message, "{}", message.describe());
        got.push(message.text().parse::<u32>().expect("a number"));
    }
    assert_eq!(got.first(), Some(&0), "the run's head fits: {got:?}");
    assert!(
        got.len() < 101,
        "an 8-frame outbox cannot take a 100-message run whole: got {}",
        got.len()
    );
    assert!(
        got.windows(2).all(|w| w[0] < w[1]),
        "in order, without duplicates: {got:?}"
    );
    // Dropping is not disconnecting: the subscriber gets what is published next.
    publisher.publish("/topic/bounded", "next").await;
    assert_eq!(subscriber.expect_message().await.text(), "next");
}
