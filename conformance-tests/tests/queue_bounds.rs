//! `/queue` bounds beyond the message count (issue 12, finding 7): a queue is bounded in bytes
//! (`--queue-max-bytes`), all of a node's queues together by a budget (`--queue-budget-bytes`),
//! the number of queues by `--max-queues`, and an idle empty queue expires
//! (`--queue-idle-expiry`), giving its place back.

use std::time::Duration;

use conformance_tests::{Broker, FrameExt, WAIT, assert_broker_serves, frame};

/// A body of `n` bytes: with the broker's 256 bytes of bookkeeping and the `user-id` header,
/// a 1,000-byte body weighs about 1,270 bytes in a queue.
fn body(n: usize) -> Vec<u8> {
    vec![b'x'; n]
}

#[tokio::test]
async fn a_send_past_the_queue_byte_bound_is_refused_and_what_was_taken_is_kept() {
    let broker = Broker::start(&["--queue-max-bytes", "4000"]);
    let mut publisher = broker.client("pub").await;
    for _ in 0..3 {
        publisher.publish("/queue/bytes", body(1000)).await;
    }
    publisher
        .send(&frame::send("/queue/bytes", body(1000)))
        .await;
    let error = publisher.expect_error("queue full").await;
    assert!(
        error.text().contains("4000 bytes"),
        "the ERROR names the byte bound: {}",
        error.describe()
    );
    publisher.expect_closed(WAIT).await;

    let mut consumer = broker.client("c").await;
    consumer.subscribe("s", "/queue/bytes").await;
    for _ in 0..3 {
        assert_eq!(consumer.expect_message().await.body.len(), 1000);
    }
    consumer.expect_no_frame().await;
    assert_broker_serves(&broker).await;
}

#[tokio::test]
async fn the_node_budget_bounds_every_queue_together() {
    let broker = Broker::start(&["--queue-budget-bytes", "3000"]);
    let mut publisher = broker.client("pub").await;
    publisher.publish("/queue/one", body(1000)).await;
    publisher.publish("/queue/two", body(1000)).await;
    publisher
        .send(&frame::send("/queue/three", body(1000)))
        .await;
    let error = publisher.expect_error("queue full").await;
    assert!(error.text().contains("budget"), "{}", error.describe());
    publisher.expect_closed(WAIT).await;

    // Consumed messages give their bytes back to the budget.
    let mut consumer = broker.client("c").await;
    consumer.subscribe("s", "/queue/one").await;
    consumer.expect_message().await;
    let mut publisher = broker.client("pub2").await;
    publisher.publish("/queue/three", body(1000)).await;
}

#[tokio::test]
async fn a_node_keeps_at_most_max_queues() {
    let broker = Broker::start(&["--max-queues", "2"]);
    let mut publisher = broker.client("pub").await;
    publisher.publish("/queue/a", "1").await;
    publisher.publish("/queue/b", "2").await;
    publisher.publish("/queue/a", "3").await;
    publisher.send(&frame::send("/queue/c", "4")).await;
    publisher.expect_error("too many queues").await;
    publisher.expect_closed(WAIT).await;

    let mut subscriber = broker.client("sub").await;
    subscriber
        .send(&frame::subscribe("s", "/queue/d").header("receipt", "r"))
        .await;
    subscriber.expect_error("too many queues").await;
    assert_broker_serves(&broker).await;
}

#[tokio::test]
async fn an_idle_empty_queue_expires_and_gives_its_place_back() {
    let broker = Broker::start(&["--max-queues", "1", "--queue-idle-expiry", "300ms"]);
    let mut client = broker.client("c").await;
    client.publish("/queue/first", "hello").await;
    client.subscribe("s", "/queue/first").await;
    assert_eq!(client.expect_message().await.text(), "hello");
    client.unsubscribe("s").await;
    // Empty and without subscribers: gone within one and a half expiries.
    tokio::time::sleep(Duration::from_millis(800)).await;
    client.publish("/queue/second", "taken").await;
}

#[tokio::test]
async fn a_queue_holding_messages_or_subscribers_never_expires() {
    let broker = Broker::start(&["--max-queues", "2", "--queue-idle-expiry", "200ms"]);
    let mut client = broker.client("c").await;
    client.publish("/queue/held", "kept").await;
    client.subscribe("s", "/queue/watched").await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    client.send(&frame::send("/queue/third", "x")).await;
    client.expect_error("too many queues").await;

    let mut consumer = broker.client("late").await;
    consumer.subscribe("s", "/queue/held").await;
    assert_eq!(consumer.expect_message().await.text(), "kept");
}
