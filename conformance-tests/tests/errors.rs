//! Bad input, one case per test: the offender gets the contract's ERROR and is disconnected,
//! and the broker keeps serving everyone else.

use conformance_tests::frame::{send, subscribe};
use conformance_tests::{Broker, Command, Frame, FrameExt, TcpClient, WAIT, assert_broker_serves};

/// Sends `bytes` on a connected session, expects ERROR `message` then the close, and checks
/// that the broker still serves others. Returns the ERROR.
async fn rejects(broker: &Broker, bytes: &[u8], message: &str) -> Frame {
    let mut client = broker.client("offender").await;
    client.send_raw(bytes).await;
    let error = client.expect_error(message).await;
    assert_error_shape(&error);
    client.expect_closed(WAIT).await;
    assert_broker_serves(broker).await;
    error
}

/// Every ERROR explains itself in a text/plain body.
fn assert_error_shape(error: &Frame) {
    assert!(
        error
            .opt("content-type")
            .is_some_and(|t| t.starts_with("text/plain")),
        "{}",
        error.describe()
    );
    assert!(!error.body.is_empty(), "ERROR without explanation");
}

#[tokio::test]
async fn garbage_bytes_are_a_malformed_frame() {
    let broker = Broker::start(&[]);
    let mut client = broker.client("offender").await;
    client
        .send_raw(b"\xff\xfe\x00garbage\x01\x02\n\x80\x81:\xc3\x28\n\n\0")
        .await;
    let error = client.expect(Command::Error).await;
    assert!(
        matches!(
            error.opt("message"),
            Some("malformed frame" | "unknown command")
        ),
        "{}",
        error.describe()
    );
    client.expect_closed(WAIT).await;
    assert_broker_serves(&broker).await;
}

#[tokio::test]
async fn garbage_before_connect_gets_an_error_and_close() {
    let broker = Broker::start(&[]);
    let mut client = TcpClient::open(broker.stomp_addr).await;
    client
        .send_raw(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await;
    // An HTTP request is not STOMP; whatever the message, the broker refuses and closes.
    let error = client.expect(Command::Error).await;
    assert!(
        matches!(
            error.opt("message"),
            Some("malformed frame" | "unknown command" | "not connected")
        ),
        "{}",
        error.describe()
    );
    client.expect_closed(WAIT).await;
    assert_broker_serves(&broker).await;
}

#[tokio::test]
async fn header_line_without_colon_is_a_malformed_frame() {
    let broker = Broker::start(&[]);
    rejects(
        &broker,
        b"SEND\ndestination:/topic/x\nno colon here\n\nbody\0",
        "malformed frame",
    )
    .await;
}

#[tokio::test]
async fn oversized_frame_is_frame_too_large() {
    let broker = Broker::start(&["--max-frame-size", "1024"]);
    let frame = send("/topic/big", vec![b'x'; 4096]);
    let bytes = conformance_tests::wire::encode(&frame, conformance_tests::Version::V1_2);
    rejects(&broker, &bytes, "frame too large").await;
}

#[tokio::test]
async fn oversized_frame_without_content_length_is_frame_too_large() {
    let broker = Broker::start(&["--max-frame-size", "1024"]);
    let mut bytes = b"SEND\ndestination:/topic/big\n\n".to_vec();
    bytes.extend(std::iter::repeat_n(b'x', 4096));
    bytes.push(0);
    rejects(&broker, &bytes, "frame too large").await;
}

#[tokio::test]
async fn declared_content_length_over_the_limit_is_refused_before_the_body() {
    let broker = Broker::start(&["--max-frame-size", "1024"]);
    let mut client = broker.client("offender").await;
    // Only the headers are sent: the broker must not wait for 10 MB it will never accept.
    client
        .send_raw(b"SEND\ndestination:/topic/big\ncontent-length:10000000\n\nxx")
        .await;
    client.expect_error("frame too large").await;
    client.expect_closed(WAIT).await;
    assert_broker_serves(&broker).await;
}

#[tokio::test]
async fn body_over_max_body_is_frame_too_large() {
    let broker = Broker::start(&["--max-body", "100"]);
    let frame = send("/topic/body", vec![b'b'; 200]);
    let bytes = conformance_tests::wire::encode(&frame, conformance_tests::Version::V1_2);
    let error = rejects(&broker, &bytes, "frame too large").await;
    assert!(
        error.text().contains("body"),
        "the body should say which limit: {:?}",
        error.text()
    );
}

#[tokio::test]
async fn too_many_headers_is_frame_too_large() {
    let broker = Broker::start(&["--max-headers", "8"]);
    let mut frame = send("/topic/headers", "x");
    for i in 0..20 {
        frame = frame.header(format!("h{i}"), "v");
    }
    let bytes = conformance_tests::wire::encode(&frame, conformance_tests::Version::V1_2);
    rejects(&broker, &bytes, "frame too large").await;
}

#[tokio::test]
async fn overlong_header_line_is_frame_too_large() {
    let broker = Broker::start(&["--max-header-line", "256"]);
    let frame = send("/topic/line", "x").header("long", "v".repeat(1000));
    let bytes = conformance_tests::wire::encode(&frame, conformance_tests::Version::V1_2);
    rejects(&broker, &bytes, "frame too large").await;
}

#[tokio::test]
async fn unknown_command_is_an_error() {
    let broker = Broker::start(&[]);
    rejects(
        &broker,
        b"PUBLISH\ndestination:/topic/x\n\nhi\0",
        "unknown command",
    )
    .await;
}

#[tokio::test]
async fn server_command_from_a_client_is_unknown_command() {
    let broker = Broker::start(&[]);
    rejects(
        &broker,
        b"MESSAGE\ndestination:/topic/x\nmessage-id:1\nsubscription:0\n\nforged\0",
        "unknown command",
    )
    .await;
}

#[tokio::test]
async fn undefined_escape_is_a_malformed_frame() {
    let broker = Broker::start(&[]);
    rejects(
        &broker,
        b"SEND\ndestination:/topic/x\nbad:tab\\there\n\nbody\0",
        "malformed frame",
    )
    .await;
}

#[tokio::test]
async fn bad_content_length_is_a_malformed_frame() {
    let broker = Broker::start(&[]);
    rejects(
        &broker,
        b"SEND\ndestination:/topic/x\ncontent-length:abc\n\nbody\0",
        "malformed frame",
    )
    .await;
}

#[tokio::test]
async fn body_longer_than_content_length_is_a_malformed_frame() {
    let broker = Broker::start(&[]);
    rejects(
        &broker,
        b"SEND\ndestination:/topic/x\ncontent-length:2\n\nbody\0",
        "malformed frame",
    )
    .await;
}

#[tokio::test]
async fn invalid_utf8_in_headers_is_a_malformed_frame() {
    let broker = Broker::start(&[]);
    rejects(
        &broker,
        b"SEND\ndestination:/topic/x\nname:\xc3\x28\n\nbody\0",
        "malformed frame",
    )
    .await;
}

#[tokio::test]
async fn send_without_destination_is_missing_header() {
    let broker = Broker::start(&[]);
    rejects(&broker, b"SEND\n\nbody\0", "missing header destination").await;
}

#[tokio::test]
async fn subscribe_without_id_is_missing_header() {
    let broker = Broker::start(&[]);
    rejects(
        &broker,
        b"SUBSCRIBE\ndestination:/topic/x\n\n\0",
        "missing header id",
    )
    .await;
}

#[tokio::test]
async fn subscribe_without_destination_is_missing_header() {
    let broker = Broker::start(&[]);
    rejects(
        &broker,
        b"SUBSCRIBE\nid:0\n\n\0",
        "missing header destination",
    )
    .await;
}

#[tokio::test]
async fn duplicate_subscription_id_is_an_error() {
    let broker = Broker::start(&[]);
    let mut client = broker.client("offender").await;
    client.subscribe("same", "/topic/a").await;
    client.send(&subscribe("same", "/topic/b")).await;
    client.expect_error("duplicate subscription id").await;
    client.expect_closed(WAIT).await;
    assert_broker_serves(&broker).await;
}

#[tokio::test]
async fn unsubscribe_of_unknown_id_is_an_error() {
    let broker = Broker::start(&[]);
    rejects(
        &broker,
        b"UNSUBSCRIBE\nid:never\n\n\0",
        "unknown subscription",
    )
    .await;
}

#[tokio::test]
async fn ack_of_unknown_id_is_an_error() {
    let broker = Broker::start(&[]);
    rejects(&broker, b"ACK\nid:bogus\n\n\0", "unknown ack id").await;
}

#[tokio::test]
async fn unknown_destination_prefix_names_the_accepted_prefixes() {
    let broker = Broker::start(&[]);
    let error = rejects(
        &broker,
        b"SEND\ndestination:/exchange/amq.topic\n\nbody\0",
        "unknown destination",
    )
    .await;
    let body = error.text();
    for prefix in ["/topic/", "/queue/", "/user/", "/temp-queue/"] {
        assert!(
            body.contains(prefix),
            "ERROR body does not name {prefix}: {body:?}"
        );
    }
}

#[tokio::test]
async fn subscribe_to_unknown_destination_prefix_is_an_error() {
    let broker = Broker::start(&[]);
    rejects(
        &broker,
        b"SUBSCRIBE\nid:0\ndestination:/amq/queue/x\n\n\0",
        "unknown destination",
    )
    .await;
}

#[tokio::test]
async fn unknown_ack_mode_is_invalid_header() {
    let broker = Broker::start(&[]);
    rejects(
        &broker,
        b"SUBSCRIBE\nid:0\ndestination:/queue/x\nack:sometimes\n\n\0",
        "invalid header ack",
    )
    .await;
}

#[tokio::test]
async fn empty_destination_name_is_refused() {
    let broker = Broker::start(&[]);
    let mut client = broker.client("offender").await;
    client
        .send_raw(b"SEND\ndestination:/topic/\n\nbody\0")
        .await;
    let error = client.expect(Command::Error).await;
    assert_error_shape(&error);
    client.expect_closed(WAIT).await;
    assert_broker_serves(&broker).await;
}

#[tokio::test]
async fn destination_over_1024_bytes_is_refused() {
    let broker = Broker::start(&[]);
    let mut client = broker.client("offender").await;
    let long = format!("/topic/{}", "n".repeat(1100));
    client.send(&send(&long, "body")).await;
    let error = client.expect(Command::Error).await;
    assert_error_shape(&error);
    client.expect_closed(WAIT).await;
    assert_broker_serves(&broker).await;
}

#[tokio::test]
async fn sending_to_a_reply_queue_never_issued_is_refused_or_dropped() {
    // `/reply-queue/<token>` exists only as produced by a rewrite; an invented token must not
    // reach anyone. The contract allows an ERROR or a silent drop, so only delivery is checked.
    let broker = Broker::start(&[]);
    let mut requester = broker.client("requester").await;
    requester
        .request(send("/topic/nobody", "x").header("reply-to", "/temp-queue/r"))
        .await;
    let mut forger = broker.client("forger").await;
    forger
        .send(&send("/reply-queue/forged-token", "spoof").header("receipt", "r"))
        .await;
    let _ = forger.recv_frame().await;
    requester.expect_no_frame().await;
    assert_broker_serves(&broker).await;
}

#[tokio::test]
async fn error_connection_is_closed_even_if_client_keeps_sending() {
    let broker = Broker::start(&[]);
    let mut client = broker.client("offender").await;
    client.send_raw(b"BOGUS\n\n\0").await;
    client.expect_error("unknown command").await;
    // More frames after the ERROR must not be processed.
    let _ = client
        .try_send_raw(b"SEND\ndestination:/topic/after.error\nreceipt:late\n\nx\0")
        .await;
    client.expect_closed(WAIT).await;
    assert_broker_serves(&broker).await;
}

#[tokio::test]
async fn messages_accepted_before_an_error_are_not_lost() {
    let broker = Broker::start(&[]);
    let mut client = broker.client("offender").await;
    let mut batch = Vec::new();
    for i in 0..5 {
        batch.extend_from_slice(
            format!("SEND\ndestination:/queue/before.error\n\n{i}\0").as_bytes(),
        );
    }
    batch.extend_from_slice(b"SEND\n\nno destination\0");
    client.send_raw(&batch).await;
    client.expect_error("missing header destination").await;
    client.expect_closed(WAIT).await;

    let mut consumer = broker.client("consumer").await;
    consumer.subscribe("s", "/queue/before.error").await;
    for i in 0..5 {
        assert_eq!(consumer.expect_message().await.text(), i.to_string());
    }
    assert_broker_serves(&broker).await;
}
