//! Cluster mode `/queue`: competing consumers across nodes (one Redis stream and consumer
//! group per queue), messages waiting for a consumer on any node, and a dead node's
//! unacknowledged messages redelivered by another.

use std::collections::HashSet;
use std::time::Duration;

use conformance_tests::cluster::node;
use conformance_tests::{FrameExt, QUIET, Redis, TcpClient, WAIT};

/// Receives until `n` messages arrived at `clients` together, or `within` passes.
async fn collect(clients: &mut [&mut TcpClient], n: usize, within: Duration) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + within;
    let mut got = Vec::new();
    while got.len() < n && tokio::time::Instant::now() < deadline {
        for client in clients.iter_mut() {
            if let Ok(m) = client.recv_frame_within(Duration::from_millis(50)).await {
                got.push(m.text());
            }
        }
    }
    got
}

#[tokio::test]
async fn each_message_goes_to_exactly_one_consumer_on_any_node() {
    let redis = Redis::start();
    let a = node(&redis, None, &[]);
    let b = node(&redis, None, &[]);
    let mut on_a = a.client("worker-a").await;
    on_a.subscribe("w", "/queue/jobs").await;
    let mut on_b = b.client("worker-b").await;
    on_b.subscribe("w", "/queue/jobs").await;
    let mut producer = a.client("producer").await;
    let sent: Vec<String> = (0..40).map(|i| format!("job {i}")).collect();
    for job in &sent {
        producer.publish("/queue/jobs", job).await;
    }
    let got = collect(&mut [&mut on_a, &mut on_b], sent.len(), WAIT).await;
    assert_eq!(got.len(), sent.len(), "{got:?}");
    let distinct: HashSet<&String> = got.iter().collect();
    assert_eq!(
        distinct.len(),
        sent.len(),
        "a message was delivered twice: {got:?}"
    );
    on_a.expect_silence(QUIET).await;
    on_b.expect_silence(QUIET).await;
}

#[tokio::test]
async fn messages_wait_in_redis_until_a_consumer_subscribes_anywhere() {
    let redis = Redis::start();
    let a = node(&redis, None, &[]);
    let b = node(&redis, None, &[]);
    let mut producer = a.client("producer").await;
    for i in 0..3 {
        producer.publish("/queue/later", format!("m{i}")).await;
    }
    let mut consumer = b.client("consumer").await;
    consumer.subscribe("c", "/queue/later").await;
    let got = collect(&mut [&mut consumer], 3, WAIT).await;
    assert_eq!(got, ["m0", "m1", "m2"]);
}

#[tokio::test]
async fn a_killed_nodes_unacknowledged_messages_go_to_a_consumer_on_another_node() {
    let redis = Redis::start();
    let a = node(&redis, None, &[]);
    let mut c = node(&redis, None, &[]);
    let mut doomed = c.client("doomed").await;
    doomed
        .subscribe_with("d", "/queue/work", &[("ack", "client-individual")])
        .await;
    let mut producer = a.client("producer").await;
    for i in 0..3 {
        producer.publish("/queue/work", format!("w{i}")).await;
    }
    let held = collect(&mut [&mut doomed], 3, WAIT).await;
    assert_eq!(held.len(), 3, "{held:?}");

    // The consumer on C never ACKs; C dies. A takes the messages over once C's lease lapses.
    c.kill();
    let mut survivor = a.client("survivor").await;
    survivor
        .subscribe_with("s", "/queue/work", &[("ack", "client-individual")])
        .await;
    let mut redelivered = Vec::new();
    for _ in 0..3 {
        let m = survivor
            .recv_frame_within(Duration::from_secs(15))
            .await
            .expect("a redelivery after the dead node's lease lapsed");
        assert_eq!(m.opt("redelivered"), Some("true"), "{}", m.describe());
        survivor.ack(&m).await;
        redelivered.push(m.text());
    }
    redelivered.sort();
    assert_eq!(redelivered, ["w0", "w1", "w2"]);
    survivor.expect_silence(QUIET).await;
    // Acknowledged entries leave the stream.
    assert_eq!(redis.cli(&["XLEN", "sbx:q:work"]), ["0"]);
}
