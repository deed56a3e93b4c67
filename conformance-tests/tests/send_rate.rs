//! The per-user rate on plain SENDs (`--send-rate`, `--send-burst`; issue 12): past it a
//! user's sessions are slowed — the broker reads nothing more from them until the rate allows
//! — never refused or disconnected; the rate is the user's over all their sessions, and other
//! users go on at full speed.

use std::time::{Duration, Instant};

use conformance_tests::{Broker, FrameExt, TcpClient};

const RATE: &[&str] = &["--send-rate", "20", "--send-burst", "10"];

/// `n` SENDs to `destination`, each waiting for its RECEIPT; how long they took.
async fn publish_timed(client: &mut TcpClient, destination: &str, n: usize) -> Duration {
    let start = Instant::now();
    for i in 0..n {
        client.publish(destination, i.to_string()).await;
    }
    start.elapsed()
}

#[tokio::test]
async fn sends_past_the_rate_are_slowed_not_refused() {
    let broker = Broker::start(RATE);
    let mut subscriber = broker.client("sub").await;
    subscriber.subscribe("s", "/topic/paced").await;
    let mut publisher = broker.client("fast").await;
    // 10 in the burst, then 20 more at 20/s: about a second.
    let took = publish_timed(&mut publisher, "/topic/paced", 30).await;
    assert!(
        took >= Duration::from_millis(800),
        "30 SENDs past a burst of 10 at 20/s took only {took:?}"
    );
    for i in 0..30 {
        assert_eq!(subscriber.expect_message().await.text(), i.to_string());
    }
    // Still connected and served.
    publisher.publish("/topic/paced", "after").await;
    assert_eq!(subscriber.expect_message().await.text(), "after");
}

#[tokio::test]
async fn the_rate_is_per_user_over_all_their_sessions() {
    let broker = Broker::start(RATE);
    let mut first = broker.client("ann").await;
    let took = publish_timed(&mut first, "/queue/ann", 10).await;
    assert!(
        took < Duration::from_millis(400),
        "the burst passes at once: {took:?}"
    );
    // Ann's second session finds her bucket empty.
    let mut second = broker.client("ann").await;
    let took = publish_timed(&mut second, "/queue/ann", 10).await;
    assert!(
        took >= Duration::from_millis(350),
        "ann's other session was not slowed: {took:?}"
    );
    // Bob has his own bucket.
    let mut bob = broker.client("bob").await;
    let took = publish_timed(&mut bob, "/queue/bob", 10).await;
    assert!(
        took < Duration::from_millis(400),
        "bob was slowed: {took:?}"
    );
}
