//! The publish API for backend services (`POST /api/publish`, `--service-token`): a message
//! reaches a topic's subscribers, a user's queue and a queue's consumer as a SEND's would,
//! with its headers and the message id the answer named; `/app`, reserved headers, oversize
//! bodies and callers without the token are refused.

use conformance_tests::{Broker, FrameExt};
use serde_json::{Value, json};

const TOKEN: &str = "service-secret-1";

async fn publish(broker: &Broker, request: Value) -> (u16, Value) {
    let body = request.to_string();
    let (status, body) = broker
        .http("POST", "/api/publish", Some(TOKEN), Some(&body))
        .await
        .expect("http listener answers");
    let json = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body:?}"));
    (status, json)
}

fn service_broker(extra: &[&str]) -> Broker {
    let mut args = vec!["--service-token", TOKEN];
    args.extend_from_slice(extra);
    Broker::start(&args)
}

#[tokio::test]
async fn publish_reaches_topic_subscribers_with_headers_and_its_id() {
    let broker = service_broker(&[]);
    let mut sub = broker.client("alice").await;
    sub.subscribe("s", "/topic/announcements").await;
    let (status, answer) = publish(
        &broker,
        json!({
            "destination": "/topic/announcements",
            "headers": {"content-type": "text/plain", "x-origin": "billing"},
            "body": "maintenance at noon",
        }),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    let message = sub.expect_message().await;
    assert_eq!(message.text(), "maintenance at noon");
    assert_eq!(message.value("destination"), "/topic/announcements");
    assert_eq!(message.value("x-origin"), "billing");
    assert_eq!(message.value("content-type"), "text/plain");
    assert_eq!(
        message.value("message-id"),
        answer["messageId"]
            .as_str()
            .expect("answered as documented")
    );
    // Not from a user: no sender for a subscriber to trust.
    assert_eq!(message.opt("user-id"), None);
}

#[tokio::test]
async fn publish_reaches_a_users_queue_and_only_that_user() {
    let broker = service_broker(&[]);
    let mut bob = broker.client("bob").await;
    bob.subscribe("s", "/user/queue/notifications").await;
    let mut carol = broker.client("carol").await;
    carol.subscribe("s", "/user/queue/notifications").await;
    let (status, answer) = publish(
        &broker,
        json!({"destination": "/user/bob/queue/notifications", "body": "for bob"}),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    let message = bob.expect_message().await;
    assert_eq!(message.text(), "for bob");
    carol.expect_no_frame().await;
}

#[tokio::test]
async fn publish_to_a_queue_waits_for_its_consumer() {
    let broker = service_broker(&[]);
    let (status, _) = publish(
        &broker,
        json!({"destination": "/queue/jobs", "body": "job 1"}),
    )
    .await;
    assert_eq!(status, 202);
    let mut worker = broker.client("worker").await;
    worker.subscribe("s", "/queue/jobs").await;
    assert_eq!(worker.expect_message().await.text(), "job 1");
}

#[tokio::test]
async fn publish_refuses_app_reserved_headers_and_oversize() {
    let broker = service_broker(&["--max-body", "1000"]);
    for destination in [
        "/app/chat.send",
        "/user/queue/x",
        "/temp-queue/x",
        "/nowhere",
    ] {
        let (status, answer) =
            publish(&broker, json!({"destination": destination, "body": "x"})).await;
        assert_eq!(status, 400, "{destination}: {answer}");
        assert_eq!(
            answer["code"], "UNKNOWN_DESTINATION",
            "{destination}: {answer}"
        );
    }
    for reserved in [
        "message-id",
        "user-id",
        "destination",
        "subscription",
        "content-length",
    ] {
        let (status, answer) = publish(
            &broker,
            json!({"destination": "/topic/t", "headers": {reserved: "forged"}, "body": "x"}),
        )
        .await;
        assert_eq!(status, 400, "{reserved}: {answer}");
        assert_eq!(answer["code"], "RESERVED_HEADER", "{answer}");
    }
    let (status, answer) = publish(
        &broker,
        json!({"destination": "/topic/t", "body": "x".repeat(1001)}),
    )
    .await;
    assert_eq!(status, 413, "{answer}");
    let (status, _) = publish(&broker, json!({"destination": "/topic/t"})).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn publish_without_the_service_token_is_refused() {
    let broker = service_broker(&[]);
    let body = json!({"destination": "/topic/t", "body": "x"}).to_string();
    for bearer in [None, Some("nope")] {
        let (status, _) = broker
            .http("POST", "/api/publish", bearer, Some(&body))
            .await
            .expect("answered as documented");
        assert_eq!(status, 401, "{bearer:?}");
    }
    let plain = Broker::start(&[]);
    let (status, _) = plain
        .http("POST", "/api/publish", Some(TOKEN), Some(&body))
        .await
        .expect("answered as documented");
    assert_eq!(status, 404);
}

#[tokio::test]
async fn publish_is_routed_cluster_wide_like_a_send() {
    use conformance_tests::Redis;
    use conformance_tests::cluster::{node, subscribed_by};
    let redis = Redis::start();
    let a = node(&redis, None, &["--service-token", TOKEN]);
    let b = node(&redis, None, &[]);
    let mut far = b.client("dave").await;
    far.subscribe("t", "/topic/fleet").await;
    far.subscribe("u", "/user/queue/alerts").await;
    subscribed_by(&redis, "sbx:t:fleet", 1).await;
    subscribed_by(&redis, "sbx:u:dave", 1).await;
    let (status, _) = publish(&a, json!({"destination": "/topic/fleet", "body": "to all"})).await;
    assert_eq!(status, 202);
    assert_eq!(far.expect_message().await.text(), "to all");
    let (status, _) = publish(
        &a,
        json!({"destination": "/user/dave/queue/alerts", "body": "to dave"}),
    )
    .await;
    assert_eq!(status, 202);
    let message = far.expect_message().await;
    assert_eq!(message.text(), "to dave");
    assert_eq!(message.value("destination"), "/user/queue/alerts");
}
