//! BEGIN/COMMIT/ABORT: transactional SENDs and ACKs take effect only on COMMIT, in order;
//! ABORT and the end of the session discard them; misuse is an ERROR.

use conformance_tests::frame::send;
use conformance_tests::{Broker, Command, Frame, FrameExt, TcpClient, WAIT, assert_broker_serves};

fn begin(tx: &str) -> Frame {
    Frame::new(Command::Begin).header("transaction", tx)
}

fn commit(tx: &str) -> Frame {
    Frame::new(Command::Commit).header("transaction", tx)
}

fn abort(tx: &str) -> Frame {
    Frame::new(Command::Abort).header("transaction", tx)
}

async fn subscribed(broker: &Broker, destination: &str) -> TcpClient {
    let mut subscriber = broker.client("sub").await;
    subscriber.subscribe("s", destination).await;
    subscriber
}

#[tokio::test]
async fn sends_in_a_transaction_are_invisible_until_commit() {
    let broker = Broker::start(&[]);
    let mut subscriber = subscribed(&broker, "/topic/tx").await;
    let mut publisher = broker.client("pub").await;
    publisher.request(begin("t1")).await;
    for body in ["one", "two", "three"] {
        publisher
            .request(send("/topic/tx", body).header("transaction", "t1"))
            .await;
    }
    subscriber.expect_no_frame().await;
    publisher.request(commit("t1")).await;
    for body in ["one", "two", "three"] {
        assert_eq!(subscriber.expect_message().await.text(), body);
    }
}

#[tokio::test]
async fn sends_outside_the_transaction_are_not_held() {
    let broker = Broker::start(&[]);
    let mut subscriber = subscribed(&broker, "/topic/tx.mixed").await;
    let mut publisher = broker.client("pub").await;
    publisher.request(begin("t1")).await;
    publisher
        .request(send("/topic/tx.mixed", "held").header("transaction", "t1"))
        .await;
    publisher.publish("/topic/tx.mixed", "direct").await;
    assert_eq!(subscriber.expect_message().await.text(), "direct");
    publisher.request(commit("t1")).await;
    assert_eq!(subscriber.expect_message().await.text(), "held");
}

#[tokio::test]
async fn abort_discards_the_transactions_sends() {
    let broker = Broker::start(&[]);
    let mut subscriber = subscribed(&broker, "/topic/tx.abort").await;
    let mut publisher = broker.client("pub").await;
    publisher.request(begin("t1")).await;
    publisher
        .request(send("/topic/tx.abort", "discarded").header("transaction", "t1"))
        .await;
    publisher.request(abort("t1")).await;
    publisher.publish("/topic/tx.abort", "sentinel").await;
    assert_eq!(subscriber.expect_message().await.text(), "sentinel");
}

#[tokio::test]
async fn transactions_are_independent() {
    let broker = Broker::start(&[]);
    let mut subscriber = subscribed(&broker, "/topic/tx.two").await;
    let mut publisher = broker.client("pub").await;
    publisher.request(begin("a")).await;
    publisher.request(begin("b")).await;
    publisher
        .request(send("/topic/tx.two", "from a").header("transaction", "a"))
        .await;
    publisher
        .request(send("/topic/tx.two", "from b").header("transaction", "b"))
        .await;
    publisher.request(abort("a")).await;
    publisher.request(commit("b")).await;
    assert_eq!(subscriber.expect_message().await.text(), "from b");
    subscriber.expect_no_frame().await;
}

#[tokio::test]
async fn committed_transaction_id_can_be_reused() {
    let broker = Broker::start(&[]);
    let mut publisher = broker.client("pub").await;
    publisher.request(begin("t")).await;
    publisher.request(commit("t")).await;
    publisher.request(begin("t")).await;
    publisher.request(abort("t")).await;
}

#[tokio::test]
async fn ack_in_an_aborted_transaction_leaves_the_message_unacked() {
    let broker = Broker::start(&[]);
    let mut consumer = broker.client("c").await;
    consumer
        .subscribe_with("s", "/queue/tx.ack", &[("ack", "client-individual")])
        .await;
    consumer.publish("/queue/tx.ack", "m").await;
    let message = consumer.expect_message().await;
    consumer.request(begin("t1")).await;
    consumer
        .request(
            Frame::new(Command::Ack)
                .header("id", message.value("ack"))
                .header("transaction", "t1"),
        )
        .await;
    consumer.request(abort("t1")).await;
    consumer.disconnect().await;

    let mut next = broker.client("next").await;
    next.subscribe("s", "/queue/tx.ack").await;
    let again = next.expect_message().await;
    assert_eq!(again.text(), "m");
    assert_eq!(again.value("redelivered"), "true");
}

#[tokio::test]
async fn ack_in_a_committed_transaction_takes_effect() {
    let broker = Broker::start(&[]);
    let mut consumer = broker.client("c").await;
    consumer
        .subscribe_with("s", "/queue/tx.ack.commit", &[("ack", "client-individual")])
        .await;
    consumer.publish("/queue/tx.ack.commit", "m").await;
    let message = consumer.expect_message().await;
    consumer.request(begin("t1")).await;
    consumer
        .request(
            Frame::new(Command::Ack)
                .header("id", message.value("ack"))
                .header("transaction", "t1"),
        )
        .await;
    consumer.request(commit("t1")).await;
    consumer.disconnect().await;

    let mut next = broker.client("next").await;
    next.subscribe("s", "/queue/tx.ack.commit").await;
    next.publish("/queue/tx.ack.commit", "sentinel").await;
    assert_eq!(next.expect_message().await.text(), "sentinel");
}

#[tokio::test]
async fn session_end_aborts_open_transactions() {
    let broker = Broker::start(&[]);
    let mut subscriber = subscribed(&broker, "/topic/tx.end").await;
    let mut publisher = broker.client("pub").await;
    publisher.request(begin("t1")).await;
    publisher
        .request(send("/topic/tx.end", "never").header("transaction", "t1"))
        .await;
    publisher.disconnect().await;
    let mut other = broker.client("other").await;
    other.publish("/topic/tx.end", "sentinel").await;
    assert_eq!(subscriber.expect_message().await.text(), "sentinel");
    subscriber.expect_no_frame().await;
}

#[tokio::test]
async fn commit_of_an_unknown_transaction_is_an_error() {
    let broker = Broker::start(&[]);
    let mut client = broker.client("c").await;
    client.send(&commit("nope")).await;
    client.expect_error("unknown transaction").await;
    client.expect_closed(WAIT).await;
    assert_broker_serves(&broker).await;
}

#[tokio::test]
async fn abort_of_an_unknown_transaction_is_an_error() {
    let broker = Broker::start(&[]);
    let mut client = broker.client("c").await;
    client.send(&abort("nope")).await;
    client.expect_error("unknown transaction").await;
}

#[tokio::test]
async fn send_in_an_unknown_transaction_is_an_error() {
    let broker = Broker::start(&[]);
    let mut client = broker.client("c").await;
    client
        .send(&send("/topic/tx.unknown", "x").header("transaction", "nope"))
        .await;
    client.expect_error("unknown transaction").await;
}

#[tokio::test]
async fn commit_after_commit_is_an_unknown_transaction() {
    let broker = Broker::start(&[]);
    let mut client = broker.client("c").await;
    client.request(begin("t")).await;
    client.request(commit("t")).await;
    client.send(&commit("t")).await;
    client.expect_error("unknown transaction").await;
}

#[tokio::test]
async fn begin_of_an_open_transaction_is_a_duplicate() {
    let broker = Broker::start(&[]);
    let mut client = broker.client("c").await;
    client.request(begin("t")).await;
    client.send(&begin("t")).await;
    client.expect_error("duplicate transaction").await;
    client.expect_closed(WAIT).await;
    assert_broker_serves(&broker).await;
}

#[tokio::test]
async fn too_many_open_transactions_is_an_error() {
    let broker = Broker::start(&[]);
    let mut client = broker.client("c").await;
    // The default limit is 16 open transactions per session.
    for i in 0..16 {
        client.request(begin(&format!("t{i}"))).await;
    }
    client.send(&begin("t16")).await;
    client.expect_error("too many transactions").await;
}

#[tokio::test]
async fn begin_without_transaction_header_is_missing_header() {
    let broker = Broker::start(&[]);
    let mut client = broker.client("c").await;
    client.send_raw(b"BEGIN\n\n\0").await;
    client.expect_error("missing header transaction").await;
}

/// A transaction is bounded in bytes as well as in frames: few large SENDs past
/// `--max-transaction-bytes` are refused like too many small ones.
#[tokio::test]
async fn a_transaction_past_its_byte_bound_is_an_error() {
    let broker = Broker::start(&["--max-transaction-bytes", "100000"]);
    let mut client = broker.client("c").await;
    client.request(begin("t")).await;
    let body = vec![b'x'; 40_000];
    for _ in 0..2 {
        client
            .request(send("/topic/big", &body).header("transaction", "t"))
            .await;
    }
    client
        .send(&send("/topic/big", &body).header("transaction", "t"))
        .await;
    client.expect_error("too many transactions").await;
    client.expect_closed(WAIT).await;
    assert_broker_serves(&broker).await;
}
