//! `/topic/...`: publish/subscribe fan-out, RabbitMQ-style wildcards, unsubscribe, and the
//! headers a MESSAGE carries.
//!
//! Negative cases ("this must not arrive") publish a non-matching message and then a matching
//! sentinel from the same publisher; the sentinel arriving first proves the other was not
//! delivered, without waiting out a timeout.

use std::collections::HashSet;

use conformance_tests::frame::send;
use conformance_tests::{Broker, Command, Frame, FrameExt};

#[tokio::test]
async fn every_subscriber_gets_every_message() {
    let broker = Broker::start(&[]);
    let mut subscribers = Vec::new();
    for i in 0..3 {
        let mut client = broker.client(&format!("sub{i}")).await;
        client.subscribe("s", "/topic/fan").await;
        subscribers.push(client);
    }
    let mut publisher = broker.client("pub").await;
    publisher.publish("/topic/fan", "one").await;
    publisher.publish("/topic/fan", "two").await;
    for subscriber in &mut subscribers {
        assert_eq!(subscriber.expect_message().await.text(), "one");
        assert_eq!(subscriber.expect_message().await.text(), "two");
    }
}

#[tokio::test]
async fn two_subscriptions_of_one_session_each_get_a_copy() {
    let broker = Broker::start(&[]);
    let mut client = broker.client("sub").await;
    client.subscribe("a", "/topic/twice").await;
    client.subscribe("b", "/topic/twice").await;
    let mut publisher = broker.client("pub").await;
    publisher.publish("/topic/twice", "hi").await;
    let ids: HashSet<String> = [client.expect_message().await, client.expect_message().await]
        .iter()
        .map(|m| m.value("subscription").to_owned())
        .collect();
    assert_eq!(ids, HashSet::from(["a".to_owned(), "b".to_owned()]));
}

#[tokio::test]
async fn publisher_subscribed_to_its_own_topic_gets_its_message() {
    let broker = Broker::start(&[]);
    let mut client = broker.client("echo").await;
    client.subscribe("s", "/topic/self").await;
    client.publish("/topic/self", "me").await;
    assert_eq!(client.expect_message().await.text(), "me");
}

#[tokio::test]
async fn star_matches_exactly_one_segment() {
    let broker = Broker::start(&[]);
    let mut subscriber = broker.client("sub").await;
    subscriber.subscribe("s", "/topic/chat.*").await;
    let mut publisher = broker.client("pub").await;
    for miss in [
        "/topic/chat",
        "/topic/chat.room1.extra",
        "/topic/chatter.room1",
        "/topic/other.room1",
    ] {
        publisher.publish(miss, miss).await;
    }
    publisher.publish("/topic/chat.room1", "hit1").await;
    publisher.publish("/topic/chat.room2", "hit2").await;
    let first = subscriber.expect_message().await;
    assert_eq!(
        first.text(),
        "hit1",
        "non-matching message delivered: {}",
        first.describe()
    );
    assert_eq!(first.value("destination"), "/topic/chat.room1");
    assert_eq!(subscriber.expect_message().await.text(), "hit2");
}

#[tokio::test]
async fn star_in_the_middle_matches_one_segment() {
    let broker = Broker::start(&[]);
    let mut subscriber = broker.client("sub").await;
    subscriber.subscribe("s", "/topic/a.*.c").await;
    let mut publisher = broker.client("pub").await;
    for miss in ["/topic/a.c", "/topic/a.b.x.c", "/topic/a.b.d"] {
        publisher.publish(miss, miss).await;
    }
    publisher.publish("/topic/a.b.c", "hit").await;
    assert_eq!(subscriber.expect_message().await.text(), "hit");
}

#[tokio::test]
async fn hash_matches_zero_or_more_segments() {
    let broker = Broker::start(&[]);
    let mut subscriber = broker.client("sub").await;
    subscriber.subscribe("s", "/topic/chat.#").await;
    let mut publisher = broker.client("pub").await;
    publisher.publish("/topic/chatter", "miss").await;
    publisher.publish("/topic/other.chat", "miss").await;
    for hit in ["/topic/chat", "/topic/chat.a", "/topic/chat.a.b.c"] {
        publisher.publish(hit, hit).await;
    }
    for hit in ["/topic/chat", "/topic/chat.a", "/topic/chat.a.b.c"] {
        let message = subscriber.expect_message().await;
        assert_eq!(message.text(), hit, "got {}", message.describe());
        assert_eq!(message.value("destination"), hit);
    }
}

#[tokio::test]
async fn literal_subscription_does_not_match_other_names() {
    let broker = Broker::start(&[]);
    let mut subscriber = broker.client("sub").await;
    subscriber.subscribe("s", "/topic/news").await;
    let mut publisher = broker.client("pub").await;
    publisher.publish("/topic/news.sport", "miss").await;
    publisher.publish("/topic/newsletter", "miss").await;
    publisher.publish("/topic/news", "hit").await;
    assert_eq!(subscriber.expect_message().await.text(), "hit");
}

#[tokio::test]
async fn unsubscribe_stops_delivery() {
    let broker = Broker::start(&[]);
    let mut subscriber = broker.client("sub").await;
    subscriber.subscribe("gone", "/topic/unsub").await;
    subscriber.subscribe("kept", "/topic/unsub.sentinel").await;
    subscriber.unsubscribe("gone").await;
    let mut publisher = broker.client("pub").await;
    publisher.publish("/topic/unsub", "should not arrive").await;
    publisher.publish("/topic/unsub.sentinel", "sentinel").await;
    let message = subscriber.expect_message().await;
    assert_eq!(message.text(), "sentinel", "got {}", message.describe());
}

#[tokio::test]
async fn nothing_is_kept_for_absent_subscribers() {
    let broker = Broker::start(&[]);
    let mut publisher = broker.client("pub").await;
    publisher
        .publish("/topic/late", "before anyone listened")
        .await;
    let mut subscriber = broker.client("sub").await;
    subscriber.subscribe("s", "/topic/late").await;
    publisher.publish("/topic/late", "after").await;
    assert_eq!(subscriber.expect_message().await.text(), "after");
}

#[tokio::test]
async fn message_carries_contract_headers_and_passes_application_headers() {
    let broker = Broker::start(&[]);
    let mut subscriber = broker.client("sub").await;
    subscriber.subscribe("sub-7", "/topic/headers").await;
    let mut publisher = broker.client("pub").await;
    publisher
        .request(
            send("/topic/headers", r#"{"k":1}"#)
                .header("content-type", "application/json;charset=utf-8")
                .header("x-trace", "abc-123")
                .header("priority-hint", "high"),
        )
        .await;
    let message = subscriber.expect_message().await;
    assert_eq!(message.command, Command::Message);
    assert_eq!(message.value("destination"), "/topic/headers");
    assert_eq!(message.value("subscription"), "sub-7");
    assert!(!message.value("message-id").is_empty());
    assert_eq!(
        message.value("content-type"),
        "application/json;charset=utf-8"
    );
    assert_eq!(message.value("x-trace"), "abc-123");
    assert_eq!(message.value("priority-hint"), "high");
    assert_eq!(message.value("content-length"), "7");
    assert_eq!(message.text(), r#"{"k":1}"#);
    // `request` added a receipt to the SEND: a transport header, not passed through.
    assert_eq!(message.opt("receipt"), None, "{}", message.describe());
    assert_eq!(message.opt("redelivered"), None, "{}", message.describe());
}

#[tokio::test]
async fn transaction_header_is_not_passed_through() {
    let broker = Broker::start(&[]);
    let mut subscriber = broker.client("sub").await;
    subscriber.subscribe("s", "/topic/tx.headers").await;
    let mut publisher = broker.client("pub").await;
    publisher
        .request(Frame::new(Command::Begin).header("transaction", "t1"))
        .await;
    publisher
        .request(send("/topic/tx.headers", "in tx").header("transaction", "t1"))
        .await;
    publisher
        .request(Frame::new(Command::Commit).header("transaction", "t1"))
        .await;
    let message = subscriber.expect_message().await;
    assert_eq!(message.opt("transaction"), None, "{}", message.describe());
    assert_eq!(message.opt("receipt"), None, "{}", message.describe());
}

#[tokio::test]
async fn message_ids_are_unique() {
    let broker = Broker::start(&[]);
    let mut first = broker.client("a").await;
    first.subscribe("s", "/topic/ids").await;
    let mut second = broker.client("b").await;
    second.subscribe("s", "/topic/ids").await;
    let mut publisher = broker.client("pub").await;
    for i in 0..20 {
        publisher.publish("/topic/ids", i.to_string()).await;
    }
    let mut ids = HashSet::new();
    for _ in 0..20 {
        let id = first.expect_message().await.value("message-id").to_owned();
        assert!(ids.insert(id.clone()), "message-id {id} repeated");
    }
    // The copy of one message to another subscriber may share its id; what matters is that
    // different messages never do.
    let mut second_ids = HashSet::new();
    for _ in 0..20 {
        second_ids.insert(second.expect_message().await.value("message-id").to_owned());
    }
    assert_eq!(second_ids.len(), 20);
}

#[tokio::test]
async fn topic_prefetch_holds_messages_until_ack() {
    let broker = Broker::start(&[]);
    let mut subscriber = broker.client("sub").await;
    subscriber
        .subscribe_with(
            "s",
            "/topic/paced",
            &[("ack", "client-individual"), ("prefetch-count", "1")],
        )
        .await;
    let mut publisher = broker.client("pub").await;
    publisher.publish("/topic/paced", "one").await;
    publisher.publish("/topic/paced", "two").await;
    let one = subscriber.expect_message().await;
    assert_eq!(one.text(), "one");
    subscriber.expect_no_frame().await;
    subscriber.ack(&one).await;
    assert_eq!(subscriber.expect_message().await.text(), "two");
}

#[tokio::test]
async fn nack_on_a_topic_discards_the_message() {
    let broker = Broker::start(&[]);
    let mut subscriber = broker.client("sub").await;
    subscriber
        .subscribe_with("s", "/topic/nacked", &[("ack", "client-individual")])
        .await;
    let mut publisher = broker.client("pub").await;
    publisher.publish("/topic/nacked", "rejected").await;
    let message = subscriber.expect_message().await;
    subscriber.nack(&message).await;
    publisher.publish("/topic/nacked", "sentinel").await;
    let next = subscriber.expect_message().await;
    assert_eq!(
        next.text(),
        "sentinel",
        "NACKed topic message came back: {}",
        next.describe()
    );
}

#[tokio::test]
async fn subscription_id_can_be_reused_after_unsubscribe() {
    let broker = Broker::start(&[]);
    let mut client = broker.client("c").await;
    client.subscribe("s", "/topic/first").await;
    client.unsubscribe("s").await;
    client.subscribe("s", "/topic/second").await;
    client.publish("/topic/first", "old").await;
    client.publish("/topic/second", "new").await;
    let message = client.expect_message().await;
    assert_eq!(message.text(), "new");
    assert_eq!(message.value("subscription"), "s");
}
