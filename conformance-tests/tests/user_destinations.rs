//! `/user/...` destinations, Spring semantics: a message sent to `/user/U/queue/x` reaches
//! every session of U subscribed to `/user/queue/x`, and nobody else.

use conformance_tests::frame::subscribe;
use conformance_tests::{Broker, FrameExt, WAIT, assert_broker_serves};

#[tokio::test]
async fn message_reaches_every_subscribed_session_of_the_user() {
    let broker = Broker::start(&[]);
    let mut laptop = broker.client("alice").await;
    laptop.subscribe("n", "/user/queue/notes").await;
    let mut phone = broker.client("alice").await;
    phone.subscribe("mine", "/user/queue/notes").await;
    let mut bob = broker.client("bob").await;
    bob.publish("/user/alice/queue/notes", "hi alice").await;

    for (session, subscription) in [(&mut laptop, "n"), (&mut phone, "mine")] {
        let message = session.expect_message().await;
        assert_eq!(message.text(), "hi alice");
        assert_eq!(message.value("destination"), "/user/queue/notes");
        assert_eq!(message.value("subscription"), subscription);
    }
}

#[tokio::test]
async fn other_users_do_not_receive_it() {
    let broker = Broker::start(&[]);
    let mut alice = broker.client("alice").await;
    alice.subscribe("n", "/user/queue/notes").await;
    let mut carol = broker.client("carol").await;
    carol.subscribe("n", "/user/queue/notes").await;
    let mut bob = broker.client("bob").await;
    bob.publish("/user/alice/queue/notes", "for alice").await;
    bob.publish("/user/carol/queue/notes", "for carol").await;
    assert_eq!(alice.expect_message().await.text(), "for alice");
    assert_eq!(carol.expect_message().await.text(), "for carol");
    alice.expect_no_frame().await;
}

#[tokio::test]
async fn sessions_of_the_user_not_subscribed_to_that_name_do_not_receive_it() {
    let broker = Broker::start(&[]);
    let mut alice = broker.client("alice").await;
    alice.subscribe("o", "/user/queue/other").await;
    let mut bob = broker.client("bob").await;
    bob.publish("/user/alice/queue/notes", "not for other")
        .await;
    bob.publish("/user/alice/queue/other", "sentinel").await;
    assert_eq!(alice.expect_message().await.text(), "sentinel");
}

#[tokio::test]
async fn message_for_a_user_without_subscription_is_dropped() {
    let broker = Broker::start(&[]);
    let mut bob = broker.client("bob").await;
    bob.publish("/user/dave/queue/inbox", "lost").await;
    let mut dave = broker.client("dave").await;
    dave.subscribe("i", "/user/queue/inbox").await;
    bob.publish("/user/dave/queue/inbox", "kept").await;
    assert_eq!(dave.expect_message().await.text(), "kept");
}

#[tokio::test]
async fn subscribing_to_another_users_destination_is_access_denied() {
    let broker = Broker::start(&[]);
    let mut bob = broker.client("bob").await;
    bob.send(&subscribe("spy", "/user/alice/queue/notes")).await;
    bob.expect_error("access denied").await;
    bob.expect_closed(WAIT).await;
    assert_broker_serves(&broker).await;
}

#[tokio::test]
async fn a_user_can_message_themself() {
    let broker = Broker::start(&[]);
    let mut alice = broker.client("alice").await;
    alice.subscribe("n", "/user/queue/self").await;
    alice
        .publish("/user/alice/queue/self", "note to self")
        .await;
    let message = alice.expect_message().await;
    assert_eq!(message.text(), "note to self");
    assert_eq!(message.value("destination"), "/user/queue/self");
}
