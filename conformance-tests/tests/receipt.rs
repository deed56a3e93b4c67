//! RECEIPT: every client frame carrying `receipt` is answered once it took effect; DISCONNECT's
//! receipt comes before the close; an ERROR names the offending frame's receipt.

use conformance_tests::frame::{send, subscribe};
use conformance_tests::{Broker, Command, Frame, FrameExt, WAIT};

#[tokio::test]
async fn every_client_frame_with_receipt_gets_its_receipt() {
    let broker = Broker::start(&[]);
    let mut client = broker.client("c").await;
    client
        .send(&subscribe("q", "/queue/receipts").header("ack", "client-individual"))
        .await;
    client
        .send(&send("/queue/receipts", "one").header("receipt", "send-1"))
        .await;
    let mut first = None;
    // The subscription has no receipt; the SEND does, and its MESSAGE may come either side.
    for _ in 0..2 {
        let frame = client.recv_frame().await;
        match frame.command {
            Command::Receipt => assert_eq!(frame.value("receipt-id"), "send-1"),
            Command::Message => first = Some(frame),
            _ => panic!("unexpected {}", frame.describe()),
        }
    }
    let first = first.expect("MESSAGE");
    client.publish("/queue/receipts", "two").await;
    let second = client.expect_message().await;

    let frames: Vec<(&str, Frame)> = vec![
        ("sub", subscribe("t", "/topic/receipts")),
        ("unsub", Frame::new(Command::Unsubscribe).header("id", "t")),
        (
            "ack",
            Frame::new(Command::Ack).header("id", first.value("ack")),
        ),
        (
            "nack",
            Frame::new(Command::Nack).header("id", second.value("ack")),
        ),
        (
            "begin",
            Frame::new(Command::Begin).header("transaction", "tx"),
        ),
        (
            "tx-send",
            send("/topic/receipts", "x").header("transaction", "tx"),
        ),
        (
            "commit",
            Frame::new(Command::Commit).header("transaction", "tx"),
        ),
        (
            "begin-2",
            Frame::new(Command::Begin).header("transaction", "tx2"),
        ),
        (
            "abort",
            Frame::new(Command::Abort).header("transaction", "tx2"),
        ),
    ];
    for (id, frame) in frames {
        let command = frame.command;
        client.send(&frame.header("receipt", id)).await;
        loop {
            let reply = client.recv_frame().await;
            if reply.command == Command::Message {
                continue; // the NACKed message coming back
            }
            assert_eq!(
                reply.command,
                Command::Receipt,
                "{command}: {}",
                reply.describe()
            );
            assert_eq!(reply.value("receipt-id"), id, "{command}");
            break;
        }
    }
}

#[tokio::test]
async fn receipts_come_back_in_frame_order() {
    let broker = Broker::start(&[]);
    let mut client = broker.client("c").await;
    let mut batch = Vec::new();
    for i in 0..50 {
        batch.extend_from_slice(
            format!("SEND\ndestination:/topic/order\nreceipt:r{i}\n\n{i}\0").as_bytes(),
        );
    }
    client.send_raw(&batch).await;
    for i in 0..50 {
        client.expect_receipt(&format!("r{i}")).await;
    }
}

#[tokio::test]
async fn send_receipt_comes_after_the_message_was_routed() {
    let broker = Broker::start(&[]);
    let mut subscriber = broker.client("sub").await;
    subscriber.subscribe("s", "/queue/routed").await;
    let mut publisher = broker.client("pub").await;
    publisher.publish("/queue/routed", "m").await;
    // Routed before the RECEIPT: the consumer has it without any further action.
    assert_eq!(subscriber.expect_message().await.text(), "m");
}

#[tokio::test]
async fn disconnect_receipt_comes_before_the_close() {
    let broker = Broker::start(&[]);
    let mut client = broker.client("c").await;
    client
        .send(&Frame::new(Command::Disconnect).header("receipt", "bye-77"))
        .await;
    client.expect_receipt("bye-77").await;
    client.expect_closed(WAIT).await;
}

#[tokio::test]
async fn disconnect_receipt_follows_everything_sent_before_it() {
    let broker = Broker::start(&[]);
    let mut subscriber = broker.client("sub").await;
    subscriber.subscribe("s", "/topic/before.bye").await;
    let mut client = broker.client("c").await;
    let mut batch = Vec::new();
    for i in 0..20 {
        batch.extend_from_slice(format!("SEND\ndestination:/topic/before.bye\n\n{i}\0").as_bytes());
    }
    batch.extend_from_slice(b"DISCONNECT\nreceipt:bye\n\n\0");
    client.send_raw(&batch).await;
    client.expect_receipt("bye").await;
    client.expect_closed(WAIT).await;
    for i in 0..20 {
        assert_eq!(subscriber.expect_message().await.text(), i.to_string());
    }
}

#[tokio::test]
async fn disconnect_without_receipt_closes() {
    let broker = Broker::start(&[]);
    let mut client = broker.client("c").await;
    client.send_raw(b"DISCONNECT\n\n\0").await;
    client.expect_closed(WAIT).await;
}

#[tokio::test]
async fn error_carries_the_receipt_id_of_the_offending_frame() {
    let broker = Broker::start(&[]);
    let mut client = broker.client("c").await;
    client
        .send_raw(b"SEND\nreceipt:oops-1\n\nno destination\0")
        .await;
    let error = client.expect_error("missing header destination").await;
    assert_eq!(error.value("receipt-id"), "oops-1");
    client.expect_closed(WAIT).await;
}

#[tokio::test]
async fn error_without_receipt_has_no_receipt_id() {
    let broker = Broker::start(&[]);
    let mut client = broker.client("c").await;
    client.send_raw(b"SEND\n\nno destination\0").await;
    let error = client.expect_error("missing header destination").await;
    assert_eq!(error.opt("receipt-id"), None);
}
