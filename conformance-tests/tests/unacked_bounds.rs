//! Held-back messages are bounded in count and bytes (issue 12, finding 7): what a client-ack
//! subscriber holds unacknowledged, whatever its prefetch (absent: unlimited). A `/queue`
//! consumer at `--max-unacked` / `--max-unacked-bytes` gets nothing more until it ACKs (flow
//! control, nothing lost); a session past them on topic subscriptions, which cannot hold their
//! messages back, gets ERROR `too many unacknowledged`.

use conformance_tests::{Broker, FrameExt, WAIT, assert_broker_serves};

const CLIENT: [(&str, &str); 1] = [("ack", "client")];
const CLIENT_INDIVIDUAL: [(&str, &str); 1] = [("ack", "client-individual")];

#[tokio::test]
async fn a_topic_subscriber_that_never_acks_is_cut_off_at_the_count_bound() {
    let broker = Broker::start(&["--max-unacked", "5"]);
    let mut subscriber = broker.client("sub").await;
    subscriber
        .subscribe_with("s", "/topic/unacked", &CLIENT)
        .await;
    let mut publisher = broker.client("pub").await;
    for i in 0..6 {
        publisher.publish("/topic/unacked", i.to_string()).await;
    }
    for _ in 0..5 {
        subscriber.expect_message().await;
    }
    subscriber.expect_error("too many unacknowledged").await;
    subscriber.expect_closed(WAIT).await;
    assert_broker_serves(&broker).await;
}

#[tokio::test]
async fn a_topic_subscriber_that_acks_stays_under_the_bound() {
    let broker = Broker::start(&["--max-unacked", "5"]);
    let mut subscriber = broker.client("sub").await;
    subscriber
        .subscribe_with("s", "/topic/acked", &CLIENT_INDIVIDUAL)
        .await;
    let mut publisher = broker.client("pub").await;
    for i in 0..20 {
        publisher.publish("/topic/acked", i.to_string()).await;
        let message = subscriber.expect_message().await;
        assert_eq!(message.text(), i.to_string());
        subscriber.ack(&message).await;
    }
}

#[tokio::test]
async fn the_topic_bound_counts_bytes_too() {
    let broker = Broker::start(&["--max-unacked-bytes", "5000"]);
    let mut subscriber = broker.client("sub").await;
    subscriber
        .subscribe_with("s", "/topic/heavy", &CLIENT)
        .await;
    let mut publisher = broker.client("pub").await;
    // About 1,270 bytes each held: the fourth takes the session past 5,000.
    for _ in 0..4 {
        publisher.publish("/topic/heavy", vec![b'x'; 1000]).await;
    }
    for _ in 0..3 {
        subscriber.expect_message().await;
    }
    let error = subscriber.expect_error("too many unacknowledged").await;
    assert!(error.text().contains("5000 bytes"), "{}", error.describe());
}

#[tokio::test]
async fn a_queue_consumer_at_the_bound_waits_for_its_acks_and_nothing_is_lost() {
    let broker = Broker::start(&["--max-unacked", "3"]);
    let mut publisher = broker.client("pub").await;
    for i in 0..5 {
        publisher.publish("/queue/windowed", i.to_string()).await;
    }
    let mut consumer = broker.client("c").await;
    consumer
        .subscribe_with("s", "/queue/windowed", &CLIENT_INDIVIDUAL)
        .await;
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(consumer.expect_message().await);
    }
    consumer.expect_no_frame().await;
    consumer.ack(&got[0]).await;
    assert_eq!(consumer.expect_message().await.text(), "3");
    consumer.expect_no_frame().await;
}

#[tokio::test]
async fn a_queue_consumer_window_is_bounded_in_bytes() {
    let broker = Broker::start(&["--max-unacked-bytes", "2500"]);
    let mut publisher = broker.client("pub").await;
    for _ in 0..4 {
        publisher.publish("/queue/heavy", vec![b'x'; 1000]).await;
    }
    let mut consumer = broker.client("c").await;
    consumer
        .subscribe_with("s", "/queue/heavy", &CLIENT_INDIVIDUAL)
        .await;
    // About 1,270 bytes each: the second takes the window past 2,500; then it waits.
    let first = consumer.expect_message().await;
    consumer.expect_message().await;
    consumer.expect_no_frame().await;
    consumer.ack(&first).await;
    consumer.expect_message().await;
    consumer.expect_no_frame().await;
}
