//! Cluster mode: a `/queue`'s shared side (its Redis stream and consumer group) follows the
//! node-local queue's expiry (`--queue-idle-expiry`): a stream left empty, with no consumer
//! reading it on any node, is deleted; one that holds messages stays. `--max-queues` counts
//! the queues a node SENDs to, not only those it consumes.

use std::time::Duration;

use conformance_tests::cluster::{eventually, node};
use conformance_tests::{FrameExt, Redis, frame};

fn exists(redis: &Redis, key: &str) -> bool {
    redis.cli(&["EXISTS", key]) == ["1"]
}

#[tokio::test]
async fn an_idle_empty_queue_stream_is_deleted_from_redis() {
    let redis = Redis::start();
    let a = node(&redis, None, &["--queue-idle-expiry", "300ms"]);
    let mut client = a.client("c").await;
    client.publish("/queue/gone", "once").await;
    client.subscribe("s", "/queue/gone").await;
    assert_eq!(client.expect_message().await.text(), "once");
    assert!(
        exists(&redis, "sbx:q:gone"),
        "the stream exists while in use"
    );
    client.unsubscribe("s").await;
    eventually("the idle stream deleted", Duration::from_secs(5), || {
        !exists(&redis, "sbx:q:gone")
    })
    .await;
    // Used again: made again, and it works.
    client.publish("/queue/gone", "again").await;
    client.subscribe("s2", "/queue/gone").await;
    assert_eq!(client.expect_message().await.text(), "again");
}

#[tokio::test]
async fn a_stream_holding_messages_stays() {
    let redis = Redis::start();
    let a = node(&redis, None, &["--queue-idle-expiry", "200ms"]);
    let b = node(&redis, None, &[]);
    let mut producer = a.client("p").await;
    producer.publish("/queue/kept", "waiting").await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(
        exists(&redis, "sbx:q:kept"),
        "a stream with messages was deleted"
    );
    let mut consumer = b.client("c").await;
    consumer.subscribe("s", "/queue/kept").await;
    assert_eq!(consumer.expect_message().await.text(), "waiting");
}

#[tokio::test]
async fn a_node_counts_the_queues_it_sends_to() {
    let redis = Redis::start();
    let a = node(&redis, None, &["--max-queues", "1"]);
    let mut producer = a.client("p").await;
    producer.publish("/queue/first", "1").await;
    producer.send(&frame::send("/queue/second", "2")).await;
    producer.expect_error("too many queues").await;
    assert!(
        !exists(&redis, "sbx:q:second"),
        "nothing stored for a refused SEND"
    );
}
