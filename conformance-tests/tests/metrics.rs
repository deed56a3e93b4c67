//! `GET /metrics`: the Prometheus exposition counts what the broker did, as clients saw it
//! happen — connections by transport, frames by command, deliveries and their latency, closes by
//! reason, refused logins, chat requests and store writes — and, in a cluster, Redis
//! propagation from the publish time the envelope carries.

use conformance_tests::broker::hash_password;
use conformance_tests::client::connect_frame;
use conformance_tests::cluster::{node, subscribed_by};
use conformance_tests::frame::send;
use conformance_tests::scrape::value;
use conformance_tests::{Broker, Command, FrameExt, Redis, TcpClient, WAIT, scratch_file};

const MESSAGES: usize = 5;

#[tokio::test]
async fn exposition_is_prometheus_text_with_every_family() {
    let broker = Broker::start(&[]);
    let text = broker.http_get("/metrics").await;
    for family in [
        "# TYPE stompbox_connections_open gauge",
        "# TYPE stompbox_frames_received_total counter",
        "# TYPE stompbox_delivery_latency_seconds histogram",
        "# TYPE stompbox_drops_total counter",
        "# TYPE stompbox_store_write_seconds histogram",
        "# TYPE stompbox_ready gauge",
        "# TYPE process_resident_memory_bytes gauge",
        "# TYPE process_open_fds gauge",
        "# TYPE process_cpu_seconds_total counter",
    ] {
        assert!(text.contains(family), "no {family:?} in\n{text}");
    }
    // Buckets from 50 µs to 10 s.
    for bucket in ["le=\"0.00005\"", "le=\"10\""] {
        let series = format!("stompbox_delivery_latency_seconds_bucket{{{bucket}}}");
        assert!(value(&text, &series).is_some(), "no {series}");
    }
    assert_eq!(value(&text, "stompbox_ready"), Some(1.0));
    assert!(value(&text, "process_resident_memory_bytes").is_some_and(|v| v > 0.0));
    // A single node has no Redis link, so "Redis down" cannot fire on it.
    assert!(!text.contains("stompbox_cluster_redis_connected{"));
}

#[tokio::test]
async fn frames_deliveries_connections_and_closes_are_counted() {
    let broker = Broker::start(&[]);
    let tcp_open = "stompbox_connections_open{transport=\"tcp\"}";
    let sends = "stompbox_frames_received_total{command=\"SEND\"}";
    let messages = "stompbox_frames_sent_total{command=\"MESSAGE\"}";
    let disconnects = "stompbox_closes_total{reason=\"client_disconnect\"}";
    let latency = "stompbox_delivery_latency_seconds_count";

    let mut subscriber = broker.client("sub").await;
    subscriber.subscribe("s", "/topic/metrics").await;
    let mut publisher = broker.client("pub").await;
    assert_eq!(broker.metric(tcp_open).await, 2.0);
    assert_eq!(
        broker
            .metric("stompbox_connects_total{transport=\"tcp\"}")
            .await,
        2.0
    );
    for i in 0..MESSAGES {
        publisher.publish("/topic/metrics", format!("m{i}")).await;
        assert_eq!(subscriber.expect_message().await.text(), format!("m{i}"));
    }
    let n = MESSAGES as f64;
    assert_eq!(broker.metric(sends).await, n);
    assert_eq!(broker.metric(messages).await, n);
    assert_eq!(broker.metric("stompbox_deliveries_total").await, n);
    assert_eq!(broker.metric(latency).await, n);
    assert!(broker.metric("stompbox_received_bytes_total").await > 0.0);
    assert!(broker.metric("stompbox_sent_bytes_total").await > 0.0);

    publisher.disconnect().await;
    subscriber.disconnect().await;
    broker.metric_reaches(disconnects, 2.0).await;
    assert_eq!(broker.metric(tcp_open).await, 0.0);
}

#[tokio::test]
async fn refused_logins_and_protocol_errors_are_counted_by_reason() {
    let users = format!("[users]\nann = \"{}\"\n", hash_password("right"));
    let path = scratch_file("users.toml", &users);
    let broker = Broker::start(&["--users-file", path.to_str().expect("UTF-8 path")]);
    let mut client = TcpClient::open(broker.stomp_addr).await;
    let reply = client
        .handshake(connect_frame(
            Command::Connect,
            &[
                ("accept-version", "1.2"),
                ("login", "ann"),
                ("passcode", "wrong"),
            ],
        ))
        .await;
    assert_eq!(reply.command, Command::Error, "{}", reply.describe());
    broker
        .metric_reaches(
            "stompbox_auth_failures_total{reason=\"bad_credentials\"}",
            1.0,
        )
        .await;
    broker
        .metric_reaches("stompbox_closes_total{reason=\"auth_failed\"}", 1.0)
        .await;
}

#[tokio::test]
async fn chat_send_counts_its_request_receipt_latency_and_store_write() {
    let broker = Broker::start(&[]);
    let mut alice = broker.client("alice").await;
    let body = r#"{"recipientId":"bob","content":"hi"}"#;
    alice
        .send(&send("/app/chat.send", body).header("receipt", "r1"))
        .await;
    alice.expect_receipt("r1").await;
    let ok = "stompbox_chat_requests_total{operation=\"send\",outcome=\"ok\"}";
    assert_eq!(broker.metric(ok).await, 1.0);
    assert_eq!(
        broker
            .metric("stompbox_chat_send_receipt_seconds_count")
            .await,
        1.0
    );
    // The DIRECT conversation's creation and the message: two writes to the embedded store.
    let writes = "stompbox_store_write_seconds_count{store=\"sqlite\"}";
    assert!(broker.metric(writes).await >= 2.0);

    // A refused request is counted under its error code.
    let bad = r#"{"conversationId":"g:none","content":"x"}"#;
    alice
        .send(&send("/app/chat.send", bad).header("receipt", "r2"))
        .await;
    let unknown =
        "stompbox_chat_requests_total{operation=\"send\",outcome=\"UNKNOWN_CONVERSATION\"}";
    broker.metric_reaches(unknown, 1.0).await;
}

#[tokio::test]
async fn cluster_counts_redis_propagation_from_the_envelope_publish_time() {
    let redis = Redis::start();
    let a = node(&redis, None, &[]);
    let b = node(&redis, None, &[]);
    let mut far = b.client("far").await;
    far.subscribe("s", "/topic/metrics").await;
    subscribed_by(&redis, "sbx:t:metrics", 1).await;
    let mut publisher = a.client("pub").await;
    publisher.publish("/topic/metrics", "across").await;
    assert_eq!(far.expect_message().await.text(), "across");

    let text = b.http_get("/metrics").await;
    let propagated = value(&text, "stompbox_cluster_propagation_seconds_count");
    assert_eq!(propagated, Some(1.0), "{text}");
    let sum = value(&text, "stompbox_cluster_propagation_seconds_sum").unwrap_or(-1.0);
    assert!(sum > 0.0 && sum < WAIT.as_secs_f64(), "propagation {sum} s");
    let connected = "stompbox_cluster_redis_connected{link=\"subscriber\"}";
    assert_eq!(value(&text, connected), Some(1.0));
    let channels = "stompbox_cluster_subscribed_channels{link=\"subscriber\"}";
    assert!(value(&text, channels).is_some_and(|n| n >= 1.0));
    // Counted when Redis answers the pipeline, which may come after `far` got the copy.
    a.metric_reaches("stompbox_cluster_published_total", 1.0)
        .await;
}
