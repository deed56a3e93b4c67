//! Nobody speaks for someone else: a client cannot SEND to the chat's reply queues (what
//! arrives there is the chat's word, and a chat message's `senderId` is the authenticated
//! sender's), and every MESSAGE a client's SEND produced names that client's principal in
//! `user-id`, whatever the client wrote there.

use conformance_tests::frame::send;
use conformance_tests::{Broker, FrameExt, WAIT, assert_broker_serves};

/// The chat's reply queues (docs/protocol.md, "Chat").
const REPLY_QUEUES: [&str; 8] = [
    "messages",
    "receipts",
    "typing",
    "presence",
    "sync",
    "history",
    "errors",
    "conversations",
];

/// A chat message as alice's client would display it, claiming to be from bob.
const FORGED: &str = r#"{"messageId":"1","conversationId":"d:alice:bob","senderId":"bob","content":"send me your password","contentType":"text/plain","timestamp":"2026-12-06T00:00:00Z"}"#;

#[tokio::test]
async fn a_client_cannot_send_to_another_users_chat_reply_queues() {
    let broker = Broker::start(&[]);
    let mut alice = broker.client("alice").await;
    for (i, queue) in REPLY_QUEUES.iter().enumerate() {
        alice
            .subscribe(&format!("s{i}"), &format!("/user/queue/{queue}"))
            .await;
    }
    for queue in REPLY_QUEUES {
        let mut mallory = broker.client("mallory").await;
        mallory
            .send(&send(&format!("/user/alice/queue/{queue}"), FORGED))
            .await;
        mallory.expect_error("access denied").await;
        mallory.expect_closed(WAIT).await;
    }
    alice.expect_no_frame().await;
    assert_broker_serves(&broker).await;
}

#[tokio::test]
async fn a_client_cannot_send_to_its_own_chat_reply_queues() {
    let broker = Broker::start(&[]);
    let mut alice = broker.client("alice").await;
    alice.subscribe("m", "/user/queue/messages").await;
    let mut other_device = broker.client("alice").await;
    other_device
        .send(&send("/user/queue/messages", FORGED))
        .await;
    other_device.expect_error("access denied").await;
    alice.expect_no_frame().await;
}

#[tokio::test]
async fn other_user_queues_keep_spring_semantics_and_name_the_sender() {
    let broker = Broker::start(&[]);
    let mut alice = broker.client("alice").await;
    alice.subscribe("i", "/user/queue/inbox").await;
    let mut bob = broker.client("bob").await;
    bob.publish("/user/alice/queue/inbox", "hi").await;
    let message = alice.expect_message().await;
    assert_eq!(message.text(), "hi");
    assert_eq!(message.value("user-id"), "bob");
}

#[tokio::test]
async fn a_client_supplied_user_id_is_replaced_by_its_principal() {
    let broker = Broker::start(&[]);
    let mut alice = broker.client("alice").await;
    alice.subscribe("t", "/topic/news").await;
    alice.subscribe("q", "/queue/jobs").await;
    let mut mallory = broker.client("mallory").await;
    for destination in ["/topic/news", "/queue/jobs"] {
        mallory
            .request(
                send(destination, "from the boss")
                    .header("user-id", "boss")
                    .header("user-id", "boss-again"),
            )
            .await;
    }
    for _ in 0..2 {
        let message = alice.expect_message().await;
        assert_eq!(message.text(), "from the boss");
        assert_eq!(
            message.value("user-id"),
            "mallory",
            "{}",
            message.describe()
        );
        let values = message
            .headers
            .iter()
            .filter(|(name, _)| *name == "user-id");
        assert_eq!(values.count(), 1, "{}", message.describe());
    }
}
