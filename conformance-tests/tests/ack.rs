//! Acknowledgement modes (`auto`, cumulative `client`, `client-individual`), the three ways
//! ACK names a message (1.2 `id`, 1.1 `message-id`+`subscription`, 1.0 `message-id`), and
//! unknown ids. Redelivery after the session ends is how each test observes what was acked.

use std::collections::BTreeSet;

use conformance_tests::{
    Broker, Command, Frame, FrameExt, QUIET, TcpClient, WAIT, assert_broker_serves,
};

/// Publishes `bodies` to `queue`, lets a consumer with `ack_mode` receive them all and run
/// `settle`, DISCONNECTs that session, and returns the bodies a new consumer gets.
async fn redelivered_after(
    broker: &Broker,
    queue: &str,
    ack_mode: &str,
    bodies: &[&str],
    settle: impl AsyncFnOnce(&mut TcpClient, &[Frame]),
) -> BTreeSet<String> {
    let mut publisher = broker.client("pub").await;
    let mut consumer = broker.client("first").await;
    consumer
        .subscribe_with("s", queue, &[("ack", ack_mode)])
        .await;
    for body in bodies {
        publisher.publish(queue, body).await;
    }
    let mut messages = Vec::new();
    for body in bodies {
        let message = consumer.expect_message().await;
        assert_eq!(message.text(), *body);
        messages.push(message);
    }
    settle(&mut consumer, &messages).await;
    consumer.disconnect().await;

    let mut next = broker.client("second").await;
    next.subscribe("s", queue).await;
    // A sentinel published after the subscription lands behind any redeliveries.
    publisher.publish(queue, "sentinel").await;
    let mut redelivered = BTreeSet::new();
    loop {
        let message = next.expect_message().await;
        if message.text() == "sentinel" {
            break;
        }
        assert_eq!(
            message.value("redelivered"),
            "true",
            "{}",
            message.describe()
        );
        redelivered.insert(message.text());
    }
    // Should the old session's teardown lag behind the sentinel, its redeliveries come late.
    while let Ok(message) = next.recv_frame_within(QUIET).await {
        assert_eq!(
            message.value("redelivered"),
            "true",
            "{}",
            message.describe()
        );
        redelivered.insert(message.text());
    }
    redelivered
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test]
async fn auto_ack_messages_are_not_redelivered() {
    let broker = Broker::start(&[]);
    let redelivered =
        redelivered_after(&broker, "/queue/auto", "auto", &["1", "2"], async |_, _| {}).await;
    assert_eq!(redelivered, set(&[]));
}

#[tokio::test]
async fn default_ack_mode_is_auto() {
    let broker = Broker::start(&[]);
    let mut consumer = broker.client("c").await;
    consumer.subscribe("s", "/queue/default.ack").await;
    consumer.publish("/queue/default.ack", "m").await;
    let message = consumer.expect_message().await;
    consumer.disconnect().await;
    let mut next = broker.client("next").await;
    next.subscribe("s", "/queue/default.ack").await;
    next.publish("/queue/default.ack", "sentinel").await;
    let first = next.expect_message().await;
    assert_eq!(
        first.text(),
        "sentinel",
        "{} was redelivered",
        message.text()
    );
}

#[tokio::test]
async fn client_ack_is_cumulative() {
    let broker = Broker::start(&[]);
    let redelivered = redelivered_after(
        &broker,
        "/queue/cumulative",
        "client",
        &["1", "2", "3", "4", "5"],
        async |consumer, messages| consumer.ack(&messages[2]).await,
    )
    .await;
    assert_eq!(redelivered, set(&["4", "5"]));
}

#[tokio::test]
async fn client_individual_ack_acknowledges_one_message() {
    let broker = Broker::start(&[]);
    let redelivered = redelivered_after(
        &broker,
        "/queue/individual",
        "client-individual",
        &["1", "2", "3"],
        async |consumer, messages| consumer.ack(&messages[1]).await,
    )
    .await;
    assert_eq!(redelivered, set(&["1", "3"]));
}

#[tokio::test]
async fn unacked_client_messages_are_all_redelivered() {
    let broker = Broker::start(&[]);
    let redelivered = redelivered_after(
        &broker,
        "/queue/none.acked",
        "client",
        &["1", "2"],
        async |_, _| {},
    )
    .await;
    assert_eq!(redelivered, set(&["1", "2"]));
}

#[tokio::test]
async fn client_modes_carry_an_ack_header_on_1_2() {
    let broker = Broker::start(&[]);
    let mut consumer = broker.client("c").await;
    consumer
        .subscribe_with("c", "/queue/ackhdr.c", &[("ack", "client")])
        .await;
    consumer
        .subscribe_with("i", "/queue/ackhdr.i", &[("ack", "client-individual")])
        .await;
    consumer.publish("/queue/ackhdr.c", "c").await;
    consumer.publish("/queue/ackhdr.i", "i").await;
    let a = consumer.expect_message().await;
    let b = consumer.expect_message().await;
    assert!(!a.value("ack").is_empty());
    assert!(!b.value("ack").is_empty());
    assert_ne!(a.value("ack"), b.value("ack"));
}

#[tokio::test]
async fn ack_by_message_id_and_subscription_on_1_1() {
    let broker = Broker::start(&[]);
    let mut consumer = TcpClient::connect_with(
        broker.stomp_addr,
        &[
            ("accept-version", "1.1"),
            ("host", "localhost"),
            ("login", "old"),
        ],
    )
    .await;
    consumer
        .subscribe_with("sub-11", "/queue/v11", &[("ack", "client-individual")])
        .await;
    consumer.publish("/queue/v11", "m").await;
    let message = consumer.expect_message().await;
    consumer
        .request(
            Frame::new(Command::Ack)
                .header("message-id", message.value("message-id"))
                .header("subscription", "sub-11"),
        )
        .await;
    consumer.disconnect().await;

    let mut next = broker.client("next").await;
    next.subscribe("s", "/queue/v11").await;
    next.publish("/queue/v11", "sentinel").await;
    assert_eq!(
        next.expect_message().await.text(),
        "sentinel",
        "the ACK was lost"
    );
}

#[tokio::test]
async fn ack_by_message_id_on_1_0() {
    let broker = Broker::start(&[]);
    let mut consumer = TcpClient::connect_with(
        broker.stomp_addr,
        &[("host", "localhost"), ("login", "ancient")],
    )
    .await;
    // 1.0 SUBSCRIBE needs no id.
    consumer
        .request(
            Frame::new(Command::Subscribe)
                .header("destination", "/queue/v10")
                .header("ack", "client"),
        )
        .await;
    consumer.publish("/queue/v10", "m").await;
    let message = consumer.expect_message().await;
    consumer
        .request(Frame::new(Command::Ack).header("message-id", message.value("message-id")))
        .await;
    consumer.disconnect().await;

    let mut next = broker.client("next").await;
    next.subscribe("s", "/queue/v10").await;
    next.publish("/queue/v10", "sentinel").await;
    assert_eq!(
        next.expect_message().await.text(),
        "sentinel",
        "the ACK was lost"
    );
}

#[tokio::test]
async fn ack_of_an_unknown_id_is_an_error() {
    let broker = Broker::start(&[]);
    let mut client = broker.client("c").await;
    client
        .send(&Frame::new(Command::Ack).header("id", "no-such-ack-id"))
        .await;
    client.expect_error("unknown ack id").await;
    client.expect_closed(WAIT).await;
    assert_broker_serves(&broker).await;
}

#[tokio::test]
async fn nack_of_an_unknown_id_is_an_error() {
    let broker = Broker::start(&[]);
    let mut client = broker.client("c").await;
    client
        .send(&Frame::new(Command::Nack).header("id", "no-such-ack-id"))
        .await;
    client.expect_error("unknown ack id").await;
    client.expect_closed(WAIT).await;
}

#[tokio::test]
async fn acking_the_same_message_twice_is_an_unknown_ack_id() {
    let broker = Broker::start(&[]);
    let mut client = broker.client("c").await;
    client
        .subscribe_with("s", "/queue/twice", &[("ack", "client-individual")])
        .await;
    client.publish("/queue/twice", "m").await;
    let message = client.expect_message().await;
    client.ack(&message).await;
    client
        .send(&Frame::new(Command::Ack).header("id", message.value("ack")))
        .await;
    client.expect_error("unknown ack id").await;
}

#[tokio::test]
async fn another_sessions_ack_id_is_unknown() {
    let broker = Broker::start(&[]);
    let mut owner = broker.client("owner").await;
    owner
        .subscribe_with("s", "/queue/foreign", &[("ack", "client-individual")])
        .await;
    owner.publish("/queue/foreign", "m").await;
    let message = owner.expect_message().await;
    let mut thief = broker.client("thief").await;
    thief
        .send(&Frame::new(Command::Ack).header("id", message.value("ack")))
        .await;
    thief.expect_error("unknown ack id").await;
    // The owner's message is still pending and its ACK still works.
    owner.ack(&message).await;
}

#[tokio::test]
async fn ack_without_id_is_missing_header() {
    let broker = Broker::start(&[]);
    let mut client = broker.client("c").await;
    client.send_raw(b"ACK\n\n\0").await;
    client.expect_error("missing header id").await;
    client.expect_closed(WAIT).await;
}

#[tokio::test]
async fn cumulative_ack_covers_only_its_own_subscription() {
    let broker = Broker::start(&[]);
    let mut consumer = broker.client("c").await;
    consumer
        .subscribe_with("a", "/queue/cumul.a", &[("ack", "client")])
        .await;
    consumer
        .subscribe_with("b", "/queue/cumul.b", &[("ack", "client")])
        .await;
    consumer.publish("/queue/cumul.a", "a1").await;
    consumer.publish("/queue/cumul.b", "b1").await;
    consumer.publish("/queue/cumul.a", "a2").await;
    let mut a2 = None;
    for _ in 0..3 {
        let message = consumer.expect_message().await;
        if message.text() == "a2" {
            a2 = Some(message);
        }
    }
    consumer.ack(&a2.expect("a2 delivered")).await;
    consumer.disconnect().await;

    let mut next = broker.client("next").await;
    next.subscribe("a", "/queue/cumul.a").await;
    next.subscribe("b", "/queue/cumul.b").await;
    let again = next.expect_message().await;
    assert_eq!(again.text(), "b1", "{}", again.describe());
    assert_eq!(again.value("redelivered"), "true");
    next.expect_no_frame().await;
}
