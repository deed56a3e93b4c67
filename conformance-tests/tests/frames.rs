//! Framing through the broker: header escaping per version, bodies with NULs and arbitrary
//! bytes, large bodies, CRLF line endings, and frames however TCP chops or batches them.

use conformance_tests::{Broker, FrameExt, TcpClient, Version};

async fn client_with_version(broker: &Broker, login: &str, version: &str) -> TcpClient {
    let client = TcpClient::connect_with(
        broker.stomp_addr,
        &[
            ("accept-version", version),
            ("host", "localhost"),
            ("login", login),
        ],
    )
    .await;
    assert_eq!(
        client
            .connected
            .as_ref()
            .expect("connected")
            .value("version"),
        version
    );
    client
}

/// A SEND header line, written by hand so the exact escaped bytes are under test.
fn raw_send(destination: &str, header_line: &str, receipt: &str) -> Vec<u8> {
    format!("SEND\ndestination:{destination}\n{header_line}\nreceipt:{receipt}\n\nbody\0")
        .into_bytes()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn escaped_header_values_round_trip_on_1_2() {
    let broker = Broker::start(&[]);
    let mut subscriber = client_with_version(&broker, "sub", "1.2").await;
    subscriber.subscribe("s", "/topic/esc").await;
    let mut publisher = client_with_version(&broker, "pub", "1.2").await;
    publisher
        .send_raw(&raw_send("/topic/esc", r"weird:a\cb\nc\\d\re", "r1"))
        .await;
    publisher.expect_receipt("r1").await;

    let (message, raw) = subscriber.recv_raw_frame().await;
    assert_eq!(message.value("weird"), "a:b\nc\\d\re");
    assert!(
        contains(&raw, br"weird:a\cb\nc\\d\re"),
        "MESSAGE bytes: {:?}",
        String::from_utf8_lossy(&raw)
    );
}

#[tokio::test]
async fn escaped_header_values_round_trip_on_1_1() {
    let broker = Broker::start(&[]);
    let mut subscriber = client_with_version(&broker, "sub", "1.1").await;
    subscriber.subscribe("s", "/topic/esc").await;
    let mut publisher = client_with_version(&broker, "pub", "1.1").await;
    publisher
        .send_raw(&raw_send("/topic/esc", r"weird:a\cb\nc\\d", "r1"))
        .await;
    publisher.expect_receipt("r1").await;

    let (message, raw) = subscriber.recv_raw_frame().await;
    assert_eq!(message.value("weird"), "a:b\nc\\d");
    assert!(
        contains(&raw, br"weird:a\cb\nc\\d"),
        "MESSAGE bytes: {:?}",
        String::from_utf8_lossy(&raw)
    );
}

#[tokio::test]
async fn header_values_are_escaped_for_each_subscribers_version() {
    let broker = Broker::start(&[]);
    let mut v10 = client_with_version(&broker, "v10", "1.0").await;
    v10.subscribe("s", "/topic/esc.mixed").await;
    let mut v12 = client_with_version(&broker, "v12", "1.2").await;
    v12.subscribe("s", "/topic/esc.mixed").await;

    // STOMP 1.0 has no escaping: a 1.0 publisher's backslash is a backslash, and everything
    // after the first colon is the value.
    let mut publisher = client_with_version(&broker, "pub", "1.0").await;
    publisher
        .send_raw(&raw_send("/topic/esc.mixed", r"path:C:\dir", "r1"))
        .await;
    publisher.expect_receipt("r1").await;

    let (to_v12, raw) = v12.recv_raw_frame().await;
    assert_eq!(to_v12.value("path"), r"C:\dir");
    assert!(
        contains(&raw, br"path:C\c\\dir"),
        "1.2 MESSAGE bytes: {:?}",
        String::from_utf8_lossy(&raw)
    );
    let (to_v10, raw) = v10.recv_raw_frame().await;
    assert_eq!(v10.version(), Version::V1_0);
    assert_eq!(to_v10.value("path"), r"C:\dir");
    assert!(contains(&raw, br"path:C:\dir"));
}

/// Issue 17, item 5: repeated entries reach subscribers in order (the spec's header history);
/// the first is the value.
#[tokio::test]
async fn repeated_headers_pass_through_in_order_and_the_first_wins() {
    let broker = Broker::start(&[]);
    let mut subscriber = broker.client("sub").await;
    subscriber.subscribe("s", "/topic/repeat").await;
    let mut publisher = broker.client("pub").await;
    publisher
        .send_raw(b"SEND\ndestination:/topic/repeat\nx-tag:first\nx-tag:second\n\nbody\0")
        .await;
    let message = subscriber.expect_message().await;
    assert_eq!(message.value("x-tag"), "first");
    let tags: Vec<&str> = message
        .headers
        .iter()
        .filter(|(name, _)| *name == "x-tag")
        .map(|(_, value)| value)
        .collect();
    assert_eq!(tags, ["first", "second"]);
}

#[tokio::test]
async fn body_with_nuls_is_delivered_by_content_length() {
    let broker = Broker::start(&[]);
    let mut subscriber = broker.client("sub").await;
    subscriber.subscribe("s", "/topic/nul").await;
    let mut publisher = broker.client("pub").await;
    publisher
        .send_raw(b"SEND\ndestination:/topic/nul\ncontent-length:7\n\n\0a\0b\0c\0\0")
        .await;
    let message = subscriber.expect_message().await;
    assert_eq!(&message.body[..], b"\0a\0b\0c\0");
    assert_eq!(message.value("content-length"), "7");
}

#[tokio::test]
async fn every_byte_value_survives_in_a_body() {
    let broker = Broker::start(&[]);
    let mut subscriber = broker.client("sub").await;
    subscriber.subscribe("s", "/topic/binary").await;
    let mut publisher = broker.client("pub").await;
    let body: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
    publisher.publish("/topic/binary", &body).await;
    let message = subscriber.expect_message().await;
    assert_eq!(&message.body[..], &body[..]);
}

#[tokio::test]
async fn body_without_content_length_ends_at_nul_and_gets_one() {
    let broker = Broker::start(&[]);
    let mut subscriber = broker.client("sub").await;
    subscriber.subscribe("s", "/topic/nolen").await;
    let mut publisher = broker.client("pub").await;
    publisher
        .send_raw(b"SEND\ndestination:/topic/nolen\n\nhello world\0")
        .await;
    let message = subscriber.expect_message().await;
    assert_eq!(message.text(), "hello world");
    assert_eq!(message.value("content-length"), "11");
}

#[tokio::test]
async fn one_mebibyte_message_is_delivered_intact() {
    let broker = Broker::start(&[]);
    let mut subscriber = broker.client("sub").await;
    subscriber.subscribe("s", "/topic/big").await;
    let mut publisher = broker.client("pub").await;
    let body: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
    publisher.publish("/topic/big", &body).await;
    let message = subscriber.expect_message().await;
    assert_eq!(message.body.len(), body.len());
    assert!(message.body[..] == body[..], "body differs");
}

#[tokio::test]
async fn crlf_line_endings_are_accepted() {
    let broker = Broker::start(&[]);
    let mut subscriber = broker.client("sub").await;
    subscriber.subscribe("s", "/topic/crlf").await;
    let mut publisher = TcpClient::open(broker.stomp_addr).await;
    publisher
        .send_raw(b"CONNECT\r\naccept-version:1.2\r\nhost:localhost\r\nlogin:crlf\r\n\r\n\0")
        .await;
    publisher
        .expect(conformance_tests::Command::Connected)
        .await;
    publisher
        .send_raw(
            b"SEND\r\ndestination:/topic/crlf\r\nx-app:value\r\nreceipt:r1\r\n\r\nline one\r\n\0\r\n",
        )
        .await;
    publisher.expect_receipt("r1").await;
    let message = subscriber.expect_message().await;
    assert_eq!(message.value("destination"), "/topic/crlf");
    assert_eq!(
        message.value("x-app"),
        "value",
        "CR must not be part of a value"
    );
    assert_eq!(message.text(), "line one\r\n");
}

#[tokio::test]
async fn frames_split_into_one_byte_writes_are_reassembled() {
    let broker = Broker::start(&[]);
    let mut subscriber = broker.client("sub").await;
    subscriber.subscribe("s", "/topic/trickle").await;
    let mut publisher = TcpClient::open(broker.stomp_addr).await;
    let trickle = async |client: &mut TcpClient, bytes: &[u8]| {
        for byte in bytes {
            client.send_raw(std::slice::from_ref(byte)).await;
            // Let each byte leave as its own segment.
            tokio::time::sleep(std::time::Duration::from_micros(200)).await;
        }
    };
    trickle(
        &mut publisher,
        b"CONNECT\naccept-version:1.2\nhost:localhost\n\n\0",
    )
    .await;
    publisher
        .expect(conformance_tests::Command::Connected)
        .await;
    trickle(
        &mut publisher,
        b"SEND\ndestination:/topic/trickle\ncontent-length:5\nreceipt:r1\n\nab\0cd\0",
    )
    .await;
    publisher.expect_receipt("r1").await;
    let message = subscriber.expect_message().await;
    assert_eq!(&message.body[..], b"ab\0cd");
}

#[tokio::test]
async fn frames_pipelined_behind_connect_are_processed() {
    // A client may write its first frames without waiting for CONNECTED; bytes that arrive in
    // the same read as CONNECT belong to the session.
    let broker = Broker::start(&[]);
    let mut subscriber = broker.client("sub").await;
    subscriber.subscribe("s", "/topic/pipelined").await;
    let mut publisher = TcpClient::open(broker.stomp_addr).await;
    publisher
        .send_raw(
            b"CONNECT\naccept-version:1.2\nhost:localhost\n\n\0\
              SEND\ndestination:/topic/pipelined\nreceipt:r1\n\nearly\0",
        )
        .await;
    publisher
        .expect(conformance_tests::Command::Connected)
        .await;
    publisher.expect_receipt("r1").await;
    assert_eq!(subscriber.expect_message().await.text(), "early");
}

#[tokio::test]
async fn many_frames_in_one_write_are_all_processed_in_order() {
    let broker = Broker::start(&[]);
    let mut subscriber = broker.client("sub").await;
    subscriber.subscribe("s", "/topic/batch").await;
    let mut publisher = broker.client("pub").await;
    let mut batch = Vec::new();
    for i in 0..200 {
        batch.extend_from_slice(format!("SEND\ndestination:/topic/batch\n\n{i}\0\n").as_bytes());
    }
    batch.extend_from_slice(b"SEND\ndestination:/topic/batch\nreceipt:last\n\n200\0");
    publisher.send_raw(&batch).await;
    publisher.expect_receipt("last").await;
    for i in 0..=200 {
        let message = subscriber.expect_message().await;
        assert_eq!(message.text(), i.to_string(), "messages out of order");
    }
}

#[tokio::test]
async fn eols_between_client_frames_are_accepted() {
    let broker = Broker::start(&[]);
    let mut subscriber = broker.client("sub").await;
    subscriber.subscribe("s", "/topic/eols").await;
    let mut publisher = broker.client("pub").await;
    publisher
        .send_raw(b"\n\r\n\nSEND\ndestination:/topic/eols\n\none\0\n\n\r\nSEND\ndestination:/topic/eols\n\ntwo\0")
        .await;
    assert_eq!(subscriber.expect_message().await.text(), "one");
    assert_eq!(subscriber.expect_message().await.text(), "two");
}
