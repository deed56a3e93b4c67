//! `/queue/...`: competing consumers, holding messages for absent consumers, redelivery of
//! unacknowledged and NACKed messages, prefetch windows, and the queue length limit.

use std::collections::HashSet;

use conformance_tests::{Broker, FrameExt, WAIT, assert_broker_serves};

const CLIENT_INDIVIDUAL: [(&str, &str); 1] = [("ack", "client-individual")];

#[tokio::test]
async fn competing_consumers_share_messages_round_robin() {
    let broker = Broker::start(&[]);
    let mut a = broker.client("a").await;
    a.subscribe("s", "/queue/work").await;
    let mut b = broker.client("b").await;
    b.subscribe("s", "/queue/work").await;
    let mut publisher = broker.client("pub").await;
    for i in 0..10 {
        publisher.publish("/queue/work", i.to_string()).await;
    }
    let mut seen = HashSet::new();
    for consumer in [&mut a, &mut b] {
        for _ in 0..5 {
            let message = consumer.expect_message().await;
            assert_eq!(message.value("destination"), "/queue/work");
            assert!(
                seen.insert(message.text()),
                "{} delivered twice",
                message.text()
            );
        }
        consumer.expect_no_frame().await;
    }
    assert_eq!(seen.len(), 10);
}

#[tokio::test]
async fn messages_are_held_until_a_consumer_subscribes() {
    let broker = Broker::start(&[]);
    let mut publisher = broker.client("pub").await;
    for body in ["one", "two", "three"] {
        publisher.publish("/queue/held", body).await;
    }
    publisher.disconnect().await;
    let mut consumer = broker.client("late").await;
    consumer.subscribe("s", "/queue/held").await;
    for body in ["one", "two", "three"] {
        let message = consumer.expect_message().await;
        assert_eq!(message.text(), body);
        assert_eq!(message.opt("redelivered"), None);
    }
    consumer.expect_no_frame().await;
}

#[tokio::test]
async fn unacked_messages_of_an_ended_session_are_redelivered() {
    let broker = Broker::start(&[]);
    let mut publisher = broker.client("pub").await;
    let mut first = broker.client("first").await;
    first
        .subscribe_with("s", "/queue/redeliver", &CLIENT_INDIVIDUAL)
        .await;
    publisher.publish("/queue/redeliver", "acked").await;
    publisher.publish("/queue/redeliver", "unacked").await;
    let acked = first.expect_message().await;
    let unacked = first.expect_message().await;
    assert_eq!(unacked.text(), "unacked");
    first.ack(&acked).await;
    drop(first); // abrupt: no DISCONNECT

    let mut second = broker.client("second").await;
    second
        .subscribe_with("s", "/queue/redeliver", &CLIENT_INDIVIDUAL)
        .await;
    let again = second.expect_message().await;
    assert_eq!(again.text(), "unacked");
    assert_eq!(again.value("redelivered"), "true");
    assert_eq!(again.value("message-id"), unacked.value("message-id"));
    second.expect_no_frame().await;
}

#[tokio::test]
async fn unacked_messages_are_redelivered_after_disconnect_too() {
    let broker = Broker::start(&[]);
    let mut first = broker.client("first").await;
    first
        .subscribe_with("s", "/queue/redeliver.clean", &CLIENT_INDIVIDUAL)
        .await;
    first.publish("/queue/redeliver.clean", "pending").await;
    let pending = first.expect_message().await;
    first.disconnect().await;

    let mut second = broker.client("second").await;
    second.subscribe("s", "/queue/redeliver.clean").await;
    let again = second.expect_message().await;
    assert_eq!(again.text(), "pending");
    assert_eq!(again.value("redelivered"), "true");
    assert_eq!(again.value("message-id"), pending.value("message-id"));
}

#[tokio::test]
async fn nack_requeues_for_redelivery() {
    let broker = Broker::start(&[]);
    let mut consumer = broker.client("c").await;
    consumer
        .subscribe_with("s", "/queue/nack", &CLIENT_INDIVIDUAL)
        .await;
    consumer.publish("/queue/nack", "retry me").await;
    let first = consumer.expect_message().await;
    assert_eq!(first.opt("redelivered"), None);
    consumer.nack(&first).await;
    let again = consumer.expect_message().await;
    assert_eq!(again.text(), "retry me");
    assert_eq!(again.value("redelivered"), "true");
    assert_eq!(again.value("message-id"), first.value("message-id"));
    consumer.ack(&again).await;
    consumer.expect_no_frame().await;
}

#[tokio::test]
async fn nacked_message_can_go_to_another_consumer() {
    let broker = Broker::start(&[]);
    let mut a = broker.client("a").await;
    a.subscribe_with(
        "s",
        "/queue/nack.other",
        &[("ack", "client-individual"), ("prefetch-count", "1")],
    )
    .await;
    let mut b = broker.client("b").await;
    b.subscribe_with(
        "s",
        "/queue/nack.other",
        &[("ack", "client-individual"), ("prefetch-count", "1")],
    )
    .await;
    let mut publisher = broker.client("pub").await;
    publisher.publish("/queue/nack.other", "m").await;
    // Round-robin picks one of them; whoever got it NACKs it.
    let (mut holder, mut other) = match a
        .recv_frame_within(std::time::Duration::from_millis(500))
        .await
    {
        Ok(m) => {
            a.nack(&m).await;
            (a, b)
        }
        Err(_) => {
            let m = b.expect_message().await;
            b.nack(&m).await;
            (b, a)
        }
    };
    // The NACKed message is redelivered to one of the two with room; either is fine.
    let redelivered = tokio::select! {
        m = holder.expect_message() => m,
        m = other.expect_message() => m,
    };
    assert_eq!(redelivered.text(), "m");
    assert_eq!(redelivered.value("redelivered"), "true");
}

#[tokio::test]
async fn prefetch_count_limits_unacked_deliveries() {
    let broker = Broker::start(&[]);
    let mut consumer = broker.client("c").await;
    consumer
        .subscribe_with(
            "s",
            "/queue/prefetch",
            &[("ack", "client-individual"), ("prefetch-count", "1")],
        )
        .await;
    let mut publisher = broker.client("pub").await;
    for body in ["one", "two", "three"] {
        publisher.publish("/queue/prefetch", body).await;
    }
    let one = consumer.expect_message().await;
    assert_eq!(one.text(), "one");
    consumer.expect_no_frame().await;
    consumer.ack(&one).await;
    let two = consumer.expect_message().await;
    assert_eq!(two.text(), "two");
    consumer.expect_no_frame().await;
    consumer.ack(&two).await;
    assert_eq!(consumer.expect_message().await.text(), "three");
}

#[tokio::test]
async fn prefetch_window_sends_work_to_the_consumer_with_room() {
    let broker = Broker::start(&[]);
    let prefetch_one = [("ack", "client-individual"), ("prefetch-count", "1")];
    let mut busy = broker.client("busy").await;
    busy.subscribe_with("s", "/queue/room", &prefetch_one).await;
    let mut publisher = broker.client("pub").await;
    publisher.publish("/queue/room", "first").await;
    let first = busy.expect_message().await;
    let mut idle = broker.client("idle").await;
    idle.subscribe_with("s", "/queue/room", &prefetch_one).await;
    publisher.publish("/queue/room", "second").await;
    publisher.publish("/queue/room", "third").await;
    assert_eq!(idle.expect_message().await.text(), "second");
    busy.expect_no_frame().await;
    busy.ack(&first).await;
    assert_eq!(busy.expect_message().await.text(), "third");
}

#[tokio::test]
async fn send_to_a_full_queue_is_refused_and_nothing_accepted_is_lost() {
    let broker = Broker::start(&["--queue-max-messages", "2"]);
    let mut publisher = broker.client("pub").await;
    publisher.publish("/queue/bounded", "one").await;
    publisher.publish("/queue/bounded", "two").await;
    publisher
        .send(&conformance_tests::frame::send("/queue/bounded", "three"))
        .await;
    publisher.expect_error("queue full").await;
    publisher.expect_closed(WAIT).await;

    let mut consumer = broker.client("c").await;
    consumer.subscribe("s", "/queue/bounded").await;
    assert_eq!(consumer.expect_message().await.text(), "one");
    assert_eq!(consumer.expect_message().await.text(), "two");
    consumer.expect_no_frame().await;
    assert_broker_serves(&broker).await;
}

#[tokio::test]
async fn queue_accepts_again_once_drained() {
    let broker = Broker::start(&["--queue-max-messages", "1"]);
    let mut publisher = broker.client("pub").await;
    publisher.publish("/queue/drain", "one").await;
    let mut consumer = broker.client("c").await;
    consumer.subscribe("s", "/queue/drain").await;
    assert_eq!(consumer.expect_message().await.text(), "one");
    publisher.publish("/queue/drain", "two").await;
    assert_eq!(consumer.expect_message().await.text(), "two");
}
