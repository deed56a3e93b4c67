//! Cluster mode routing: nodes on one Redis deliver `/topic` (exact and wildcard) and `/user`
//! messages to each other's sessions, exactly once, and follow local interest with their
//! Redis subscriptions.

use conformance_tests::cluster::{eventually, node, subscribed, subscribed_by};
use conformance_tests::{FrameExt, QUIET, Redis, WAIT};

#[tokio::test]
async fn topic_message_reaches_subscribers_on_every_node_once() {
    let redis = Redis::start();
    let a = node(&redis, None, &[]);
    let b = node(&redis, None, &[]);
    let mut far = b.client("far").await;
    far.subscribe("s", "/topic/news").await;
    let mut near = a.client("near").await;
    near.subscribe("s", "/topic/news").await;
    subscribed_by(&redis, "sbx:t:news", 2).await;

    let mut publisher = a.client("pub").await;
    publisher.publish("/topic/news", "hello").await;
    assert_eq!(far.expect_message().await.text(), "hello");
    assert_eq!(near.expect_message().await.text(), "hello");
    // The origin node receives its own publish back from Redis and must not deliver it again.
    near.expect_silence(QUIET).await;
    far.expect_silence(QUIET).await;

    // And back the other way, from the node that only had a remote subscriber.
    let mut back = b.client("pub-b").await;
    back.publish("/topic/news", "reply").await;
    assert_eq!(near.expect_message().await.text(), "reply");
    assert_eq!(far.expect_message().await.text(), "reply");
    near.expect_silence(QUIET).await;
}

#[tokio::test]
async fn user_destination_reaches_the_user_on_another_node() {
    let redis = Redis::start();
    let a = node(&redis, None, &[]);
    let b = node(&redis, None, &[]);
    let mut bob_b = b.client("bob").await;
    bob_b.subscribe("inbox", "/user/queue/inbox").await;
    let mut bob_a = a.client("bob").await;
    bob_a.subscribe("inbox", "/user/queue/inbox").await;
    subscribed_by(&redis, "sbx:u:bob", 2).await;

    let mut alice = a.client("alice").await;
    alice.publish("/user/bob/queue/inbox", "hi bob").await;
    for bob in [&mut bob_a, &mut bob_b] {
        let m = bob.expect_message().await;
        assert_eq!(m.text(), "hi bob");
        assert_eq!(m.value("destination"), "/user/queue/inbox");
        bob.expect_silence(QUIET).await;
    }
}

#[tokio::test]
async fn wildcard_subscription_matches_across_nodes_without_duplicates() {
    let redis = Redis::start();
    let a = node(&redis, None, &[]);
    let b = node(&redis, None, &[]);
    let mut wild = b.client("wild").await;
    wild.subscribe("w", "/topic/chat.*").await;
    let mut deep = b.client("deep").await;
    deep.subscribe("d", "/topic/chat.#").await;
    // An exact subscription on the same node: its channel and the globs all see the message.
    let mut exact = b.client("exact").await;
    exact.subscribe("e", "/topic/chat.room1").await;
    subscribed(&redis, "sbx:t:chat.room1").await;
    eventually("the pattern subscription", WAIT, || {
        redis.cli(&["PUBSUB", "NUMPAT"]) == ["1"]
    })
    .await;

    let mut publisher = a.client("pub").await;
    publisher.publish("/topic/chat.room1", "one").await;
    publisher.publish("/topic/chat.room1.thread", "two").await;
    publisher.publish("/topic/chatter", "never").await;
    assert_eq!(wild.expect_message().await.text(), "one");
    assert_eq!(exact.expect_message().await.text(), "one");
    assert_eq!(deep.expect_message().await.text(), "one");
    assert_eq!(deep.expect_message().await.text(), "two");
    for client in [&mut wild, &mut exact, &mut deep] {
        client.expect_silence(QUIET).await;
    }
}

#[tokio::test]
async fn channel_is_dropped_when_its_last_local_subscriber_leaves() {
    let redis = Redis::start();
    let a = node(&redis, None, &[]);
    let mut one = a.client("one").await;
    one.subscribe("s", "/topic/fleeting").await;
    let mut two = a.client("two").await;
    two.subscribe("s", "/topic/fleeting").await;
    two.subscribe("w", "/topic/fleeting.#").await;
    subscribed(&redis, "sbx:t:fleeting").await;

    one.unsubscribe("s").await;
    tokio::time::sleep(QUIET).await;
    assert!(
        redis.channels().contains(&"sbx:t:fleeting".to_string()),
        "a subscriber is left"
    );
    two.unsubscribe("s").await;
    eventually("the topic channel to go", WAIT, || {
        !redis.channels().contains(&"sbx:t:fleeting".to_string())
    })
    .await;
    // The pattern goes when its session does.
    two.disconnect().await;
    eventually("the pattern to go", WAIT, || {
        redis.cli(&["PUBSUB", "NUMPAT"]) == ["0"]
    })
    .await;
    one.disconnect().await;
}

#[tokio::test]
async fn nodes_without_a_node_id_claim_distinct_ones() {
    let redis = Redis::start();
    let a = node(&redis, None, &[]);
    let b = node(&redis, None, &[]);
    let mut ids = Vec::new();
    for node in [&a, &b] {
        // The subscriber connects in the background after the ready line.
        let mut health = serde_json::Value::Null;
        for _ in 0..100 {
            health = serde_json::from_str(&node.http_get("/health").await).expect("JSON");
            if health["cluster"]["redis_connected"] == true {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(health["cluster"]["redis_connected"], true, "{health}");
        ids.push(health["node_id"].as_u64().expect("node_id"));
    }
    assert_ne!(ids[0], ids[1]);
    let leases = redis.cli(&["KEYS", "sbx:node:*"]);
    assert_eq!(leases.len(), 2, "{leases:?}");
}

#[tokio::test]
async fn a_node_stopped_gracefully_releases_its_node_id_at_once() {
    let redis = Redis::start();
    let mut a = node(&redis, None, &[]);
    let mut b = node(&redis, None, &[]);
    assert_eq!(redis.cli(&["KEYS", "sbx:node:*"]).len(), 2);
    let status = a.stop_gracefully(WAIT).await.expect("node A exits");
    assert!(status.success(), "{status:?}");
    // Released on the way out, not left to lapse.
    assert_eq!(redis.cli(&["KEYS", "sbx:node:*"]).len(), 1);
    assert!(b.is_running());
}

#[tokio::test]
async fn the_subscriber_connection_stays_up_across_its_liveness_pings() {
    let redis = Redis::start();
    let a = node(&redis, None, &[]);
    let b = node(&redis, None, &[]);
    let mut far = b.client("far").await;
    far.subscribe("s", "/topic/steady").await;
    subscribed(&redis, "sbx:t:steady").await;
    let mut publisher = a.client("pub").await;
    // Longer than the subscriber's PING period (5 s), delivering all along.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(6);
    let mut n = 0;
    while std::time::Instant::now() < until {
        n += 1;
        publisher.publish("/topic/steady", format!("{n}")).await;
        assert_eq!(far.expect_message().await.text(), format!("{n}"));
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let health: serde_json::Value =
        serde_json::from_str(&b.http_get("/health").await).expect("health is JSON");
    assert_eq!(health["cluster"]["redis_reconnects"], 0, "{health}");
}

/// `--redis-url` with the per-node embedded store is allowed (nodes on one host may share one
/// data directory, as these tests do) but never silently: on separate data directories each
/// node would keep its own history and retry deduplication.
#[tokio::test]
async fn cluster_mode_on_the_embedded_store_is_warned_about_at_start() {
    let redis = Redis::start();
    let a = node(&redis, None, &[]);
    let log = a.log();
    assert!(
        log.contains("cluster mode on the embedded store") && log.contains("--postgres-url"),
        "no warning at start; stderr:\n{log}"
    );
}
