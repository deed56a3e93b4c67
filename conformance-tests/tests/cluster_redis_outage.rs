//! Cluster mode survives Redis going away: nodes keep running and delivering locally, report
//! the outage on `/health`, reconnect by themselves, and cross-node delivery comes back.

use std::time::{Duration, Instant};

use conformance_tests::cluster::{node, subscribed_by};
use conformance_tests::{Broker, FrameExt, Redis, WAIT};

async fn health(node: &Broker) -> serde_json::Value {
    serde_json::from_str(&node.http_get("/health").await).expect("health is JSON")
}

#[tokio::test]
async fn redis_restart_pauses_cross_node_delivery_only_and_it_resumes() {
    let mut redis = Redis::start();
    let mut a = node(&redis, None, &[]);
    let mut b = node(&redis, None, &[]);
    let mut far = b.client("far").await;
    far.subscribe("s", "/topic/events").await;
    let mut near = a.client("near").await;
    near.subscribe("s", "/topic/events").await;
    subscribed_by(&redis, "sbx:t:events", 2).await;
    let mut publisher = a.client("pub").await;
    publisher.publish("/topic/events", "before").await;
    assert_eq!(far.expect_message().await.text(), "before");
    assert_eq!(near.expect_message().await.text(), "before");

    redis.kill();
    // Local delivery does not depend on Redis.
    publisher.publish("/topic/events", "during").await;
    assert_eq!(near.expect_message().await.text(), "during");
    let mut down = false;
    let deadline = Instant::now() + WAIT;
    while !down && Instant::now() < deadline {
        down = health(&a).await["cluster"]["redis_connected"] == false;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(down, "node A never noticed the outage");

    redis.restart();
    let restarted = Instant::now();
    // Resubscribed by the nodes themselves: nobody here subscribes again.
    subscribed_by(&redis, "sbx:t:events", 2).await;
    let mut n = 0;
    let text = loop {
        n += 1;
        publisher
            .publish("/topic/events", format!("after {n}"))
            .await;
        let _ = near.expect_message().await;
        if let Ok(m) = far.recv_frame_within(Duration::from_millis(200)).await {
            break m.text();
        }
        assert!(
            restarted.elapsed() < Duration::from_secs(10),
            "no cross-node delivery"
        );
    };
    // "during" may come first: it waited in node A's bounded publish queue while the
    // publisher backed off, and went out once Redis was back.
    assert!(text.starts_with("after") || text == "during", "{text}");
    println!(
        "cross-node delivery back {:?} after the restart",
        restarted.elapsed()
    );

    for node in [&mut a, &mut b] {
        assert!(node.is_running(), "a node died with Redis");
    }
    // Each node's subscriber reconnects on its own jittered schedule.
    for node in [&a, &b] {
        let deadline = Instant::now() + WAIT;
        let mut h = health(node).await;
        while h["cluster"]["redis_connected"] != true && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            h = health(node).await;
        }
        assert_eq!(h["cluster"]["redis_connected"], true, "{h}");
        assert!(h["cluster"]["redis_reconnects"].as_u64() >= Some(1), "{h}");
    }
}
