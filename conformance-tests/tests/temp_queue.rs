//! `/temp-queue/...` request/reply: `reply-to` is rewritten to an opaque `/reply-queue/...`
//! and replies come back to the requesting session without a SUBSCRIBE.

use conformance_tests::frame::send;
use conformance_tests::{Broker, FrameExt};

#[tokio::test]
async fn reply_to_temp_queue_comes_back_to_the_requester() {
    let broker = Broker::start(&[]);
    let mut service = broker.client("service").await;
    service.subscribe("req", "/queue/requests").await;
    let mut requester = broker.client("requester").await;
    requester
        .request(send("/queue/requests", "ping").header("reply-to", "/temp-queue/r"))
        .await;

    let request = service.expect_message().await;
    assert_eq!(request.text(), "ping");
    let reply_to = request.value("reply-to").to_owned();
    assert!(
        reply_to.starts_with("/reply-queue/") && reply_to.len() > "/reply-queue/".len(),
        "reply-to not rewritten: {reply_to:?}"
    );
    assert!(!reply_to.contains("/temp-queue/"), "{reply_to:?}");

    service.publish(&reply_to, "pong").await;
    let reply = requester.expect_message().await;
    assert_eq!(reply.text(), "pong");
    assert_eq!(reply.value("destination"), "/temp-queue/r");
    assert_eq!(reply.value("subscription"), "/temp-queue/r");
}

#[tokio::test]
async fn replies_reach_only_the_requesting_session() {
    let broker = Broker::start(&[]);
    let mut service = broker.client("service").await;
    service.subscribe("req", "/queue/requests.two").await;
    let mut first = broker.client("same-user").await;
    let mut second = broker.client("same-user").await;
    first
        .request(send("/queue/requests.two", "from first").header("reply-to", "/temp-queue/r"))
        .await;
    second
        .request(send("/queue/requests.two", "from second").header("reply-to", "/temp-queue/r"))
        .await;

    let a = service.expect_message().await;
    let b = service.expect_message().await;
    assert_ne!(
        a.value("reply-to"),
        b.value("reply-to"),
        "two sessions' temp queues share a reply destination"
    );
    service.publish(b.value("reply-to"), "to second").await;
    service.publish(a.value("reply-to"), "to first").await;
    assert_eq!(first.expect_message().await.text(), "to first");
    assert_eq!(second.expect_message().await.text(), "to second");
}

#[tokio::test]
async fn several_requests_share_one_temp_queue() {
    let broker = Broker::start(&[]);
    let mut service = broker.client("service").await;
    service.subscribe("req", "/queue/requests.many").await;
    let mut requester = broker.client("requester").await;
    for i in 0..3 {
        requester
            .request(
                send("/queue/requests.many", i.to_string())
                    .header("reply-to", "/temp-queue/replies"),
            )
            .await;
    }
    for i in 0..3 {
        let request = service.expect_message().await;
        service
            .publish(request.value("reply-to"), format!("re {i}"))
            .await;
    }
    for i in 0..3 {
        let reply = requester.expect_message().await;
        assert_eq!(reply.text(), format!("re {i}"));
        assert_eq!(reply.value("subscription"), "/temp-queue/replies");
    }
}

#[tokio::test]
async fn topic_request_with_temp_queue_reply_works() {
    let broker = Broker::start(&[]);
    let mut service = broker.client("service").await;
    service.subscribe("req", "/topic/rpc").await;
    let mut requester = broker.client("requester").await;
    requester
        .request(send("/topic/rpc", "ping").header("reply-to", "/temp-queue/t"))
        .await;
    let request = service.expect_message().await;
    service.publish(request.value("reply-to"), "pong").await;
    let reply = requester.expect_message().await;
    assert_eq!(reply.value("destination"), "/temp-queue/t");
}
