//! Admission: what a client may do before and at CONNECT. Per-address connection cap and
//! connect rate (STOMP ERROR over TCP, HTTP 429 at the WebSocket upgrade), the node-wide cap on
//! connections that have not authenticated, the CONNECT deadline against slowloris, the
//! failed-login throttle per user and per address, and `X-Forwarded-For` believed only from a
//! trusted proxy.
//!
//! Every client here connects from its own loopback address (127.0.0.2, 127.0.0.3, ...: all of
//! 127/8 is the loopback interface on Linux), and each broker is started with
//! `--admission-exempt=` because loopback is exempt by default.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use conformance_tests::client::connect_frame;
use conformance_tests::ws::{UPGRADE_LINES, raw_upgrade};
use conformance_tests::{Broker, Command, Frame, FrameExt, TcpClient, WAIT, broker};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

/// Nothing exempt: the limits apply to the loopback addresses the tests connect from.
const NO_EXEMPTION: &str = "--admission-exempt=";

fn ip(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

/// A TCP connection to `addr` from the loopback address `127.0.0.<from>`.
async fn open_from(addr: SocketAddr, from: u8) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::new(ip(from), 0))
        .expect("bind a loopback source address");
    tokio::time::timeout(WAIT, socket.connect(addr))
        .await
        .expect("connect in time")
        .expect("connect")
}

/// CONNECT from `127.0.0.<from>` with `headers` (1.2, no heart-beats); the broker's answer.
async fn attempt_from(broker: &Broker, from: u8, headers: &[(&str, &str)]) -> (TcpClient, Frame) {
    let stream = open_from(broker.stomp_addr, from).await;
    let mut client = TcpClient::from_stream(stream).expect("client");
    let mut all = vec![
        ("accept-version", "1.2"),
        ("host", "localhost"),
        ("heart-beat", "0,0"),
    ];
    all.extend_from_slice(headers);
    let reply = client
        .handshake(connect_frame(Command::Connect, &all))
        .await;
    (client, reply)
}

async fn connect_from(broker: &Broker, from: u8, login: &str) -> TcpClient {
    let (client, reply) = attempt_from(broker, from, &[("login", login)]).await;
    assert_eq!(reply.command, Command::Connected, "{}", reply.describe());
    client
}

/// The CONNECT from `127.0.0.<from>` is refused with ERROR `message`, then closed.
async fn assert_refused_from(broker: &Broker, from: u8, headers: &[(&str, &str)], message: &str) {
    let (mut client, reply) = attempt_from(broker, from, headers).await;
    assert_eq!(reply.command, Command::Error, "{}", reply.describe());
    assert_eq!(reply.value("message"), message, "{}", reply.describe());
    client.expect_closed(WAIT).await;
}

/// Retries a CONNECT from `127.0.0.<from>` until it is CONNECTED (a released slot is given back
/// asynchronously), failing after [`WAIT`].
async fn eventually_connected(broker: &Broker, from: u8) -> TcpClient {
    let deadline = Instant::now() + WAIT;
    loop {
        let (client, reply) = attempt_from(broker, from, &[("login", "again")]).await;
        if reply.command == Command::Connected {
            return client;
        }
        assert!(
            Instant::now() < deadline,
            "still refused: {}",
            reply.describe()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A WebSocket upgrade request from `127.0.0.<from>` with `extra` header lines; the status
/// code and the whole response head and body read so far, and the stream (a 101 is a live
/// session).
async fn upgrade_from(broker: &Broker, from: u8, extra: &[&str]) -> (u16, String, TcpStream) {
    let mut stream = open_from(broker.http_addr, from).await;
    let lines: Vec<&str> = UPGRADE_LINES.iter().chain(extra).copied().collect();
    let (status, text) = raw_upgrade(&mut stream, "GET", &lines).await;
    (status, text, stream)
}

#[tokio::test]
async fn connections_over_the_per_address_cap_get_an_error_and_a_closed_one_frees_its_slot() {
    let broker = Broker::start(&[NO_EXEMPTION, "--max-connections-per-ip", "2"]);
    let mut first = connect_from(&broker, 2, "first").await;
    let mut second = connect_from(&broker, 2, "second").await;
    first.subscribe("s", "/topic/admission").await;

    assert_refused_from(
        &broker,
        2,
        &[("login", "third")],
        "too many connections from your address",
    )
    .await;
    // Another address is not affected, and neither are the two admitted connections.
    let _other = connect_from(&broker, 3, "other").await;
    second.publish("/topic/admission", "still fine").await;
    assert_eq!(first.expect_message().await.text(), "still fine");

    second.disconnect().await;
    let _again = eventually_connected(&broker, 2).await;
}

#[tokio::test]
async fn connects_beyond_the_burst_are_refused_until_the_rate_refills() {
    let broker = Broker::start(&[
        NO_EXEMPTION,
        "--connect-burst-per-ip",
        "3",
        "--connect-rate-per-ip",
        "2",
    ]);
    for n in 0..3 {
        connect_from(&broker, 2, &format!("c{n}"))
            .await
            .disconnect()
            .await;
    }
    let started = Instant::now();
    assert_refused_from(&broker, 2, &[("login", "c3")], "connection rate exceeded").await;
    // Another address has its own bucket.
    let _other = connect_from(&broker, 3, "other").await;
    // Two tokens a second: one is back within half a second (plus the refusal's own linger).
    let _refilled = eventually_connected(&broker, 2).await;
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn websocket_upgrade_over_the_per_address_cap_gets_429() {
    let broker = Broker::start(&[NO_EXEMPTION, "--max-connections-per-ip", "1"]);
    let (status, _, _session) = upgrade_from(&broker, 2, &[]).await;
    assert_eq!(status, 101, "the first upgrade is admitted");
    let (status, response, _) = upgrade_from(&broker, 2, &[]).await;
    assert_eq!(status, 429, "{response}");
    assert!(
        response.contains("too many connections from your address"),
        "{response}"
    );
    let (status, _, _) = upgrade_from(&broker, 3, &[]).await;
    assert_eq!(status, 101, "another address is admitted");
}

/// Without a trusted proxy, an HTTP connection is admitted as it is accepted, and its upgrade
/// takes that permit: a WebSocket session counts once, and a third connection is refused
/// before it sends a request.
#[tokio::test]
async fn direct_http_connections_count_once_and_are_refused_at_accept() {
    let broker = Broker::start(&[
        NO_EXEMPTION,
        "--trusted-proxy=",
        "--max-connections-per-ip",
        "2",
    ]);
    let (status, _, _session) = upgrade_from(&broker, 2, &[]).await;
    assert_eq!(status, 101);
    let (status, response, _second) = upgrade_from(&broker, 2, &[]).await;
    assert_eq!(status, 101, "the session counted once: {response}");
    // The third is refused as it connects: the answer comes without any request sent.
    let mut third = open_from(broker.http_addr, 2).await;
    let mut answer = String::new();
    tokio::time::timeout(WAIT, third.read_to_string(&mut answer))
        .await
        .expect("answered and closed in time")
        .expect("readable");
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    assert!(
        answer.contains("too many connections from your address"),
        "{answer}"
    );
}

/// An HTTP connection that sends nothing, or its request head a byte at a time, is closed by
/// the CONNECT deadline like a STOMP/TCP one, and gives its slot back.
#[tokio::test]
async fn slow_or_silent_http_connections_are_closed_at_the_connect_deadline() {
    let broker = Broker::start(&[
        NO_EXEMPTION,
        "--trusted-proxy=",
        "--max-connections-per-ip",
        "2",
        "--connect-timeout",
        "1s",
    ]);
    let started = Instant::now();
    let mut silent = open_from(broker.http_addr, 2).await;
    let mut slow = open_from(broker.http_addr, 2).await;
    let head =
        b"GET /ws HTTP/1.1\r\nHost: localhost\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let dribble = tokio::spawn(async move {
        for byte in head.iter().cycle().take(60) {
            if slow.write_all(&[*byte]).await.is_err() {
                break;
            }
            let mut chunk = [0u8; 256];
            let read = tokio::time::timeout(Duration::from_millis(100), slow.read(&mut chunk));
            if let Ok(Ok(0) | Err(_)) = read.await {
                break;
            }
        }
        started.elapsed()
    });
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(WAIT, silent.read_to_end(&mut rest))
        .await
        .expect("the silent connection is closed in time");
    let slow_closed = dribble.await.expect("dribbler");
    assert!(
        slow_closed < Duration::from_secs(4),
        "a dribbled request head held the connection {slow_closed:?}"
    );
    // Both slots are free again.
    let (status, response, _session) = upgrade_from(&broker, 2, &[]).await;
    assert_eq!(status, 101, "{response}");
}

#[tokio::test]
async fn websocket_connect_rate_refusal_says_when_to_retry() {
    let broker = Broker::start(&[
        NO_EXEMPTION,
        "--connect-burst-per-ip",
        "1",
        "--connect-rate-per-ip",
        "0.5",
    ]);
    let (status, _, session) = upgrade_from(&broker, 2, &[]).await;
    assert_eq!(status, 101);
    drop(session);
    let (status, response, _) = upgrade_from(&broker, 2, &[]).await;
    assert_eq!(status, 429, "{response}");
    assert!(response.contains("connection rate exceeded"), "{response}");
    assert!(
        response.to_ascii_lowercase().contains("retry-after: 2"),
        "{response}"
    );
}

#[tokio::test]
async fn x_forwarded_for_is_believed_only_from_a_trusted_proxy() {
    let broker = Broker::start(&[
        NO_EXEMPTION,
        "--max-connections-per-ip",
        "1",
        "--trusted-proxy",
        "127.0.0.2",
    ]);
    // Through the trusted proxy (127.0.0.2), each client counts as itself: nginx appends the
    // address it saw, and what the client wrote to the left of it is ignored.
    let client_a = "X-Forwarded-For: 203.0.113.66, 198.51.100.1";
    let (status, _, _a) = upgrade_from(&broker, 2, &[client_a]).await;
    assert_eq!(status, 101);
    let (status, response, _) = upgrade_from(&broker, 2, &[client_a]).await;
    assert_eq!(status, 429, "the same client again: {response}");
    let (status, _, _b) = upgrade_from(&broker, 2, &["X-Forwarded-For: 198.51.100.2"]).await;
    assert_eq!(status, 101, "another client behind the same proxy");
    let (status, _, _c) = upgrade_from(&broker, 2, &["X-Real-IP: 198.51.100.3"]).await;
    assert_eq!(status, 101, "X-Real-IP names a third client");

    // From an untrusted peer the header is ignored: a second connection from 127.0.0.3 is
    // refused whatever address it claims.
    let (status, _, _d) = upgrade_from(&broker, 3, &["X-Forwarded-For: 198.51.100.4"]).await;
    assert_eq!(status, 101);
    let (status, response, _) = upgrade_from(&broker, 3, &["X-Forwarded-For: 198.51.100.5"]).await;
    assert_eq!(
        status, 429,
        "a forged header must not buy a slot: {response}"
    );
}

#[tokio::test]
async fn unauthenticated_connections_are_capped_and_authenticated_ones_do_not_count() {
    let broker = Broker::start(&[
        NO_EXEMPTION,
        "--max-unauthenticated",
        "2",
        "--connect-timeout",
        "2s",
    ]);
    // Authenticated sessions give their unauthenticated slot back.
    let _a = connect_from(&broker, 2, "a").await;
    let _b = connect_from(&broker, 3, "b").await;
    let _c = connect_from(&broker, 4, "c").await;
    // Two silent sockets take both slots.
    let mut idle = Vec::new();
    for from in [5, 6] {
        let mut client =
            TcpClient::from_stream(open_from(broker.stomp_addr, from).await).expect("client");
        client.expect_silence(Duration::from_millis(200)).await;
        idle.push(client);
    }
    assert_refused_from(&broker, 7, &[("login", "d")], "server busy").await;
    // The CONNECT deadline frees them.
    for client in &mut idle {
        client.expect_error("connect timeout").await;
    }
    let _d = eventually_connected(&broker, 7).await;
}

#[tokio::test]
async fn unauthenticated_connections_are_capped_per_address() {
    let broker = Broker::start(&[NO_EXEMPTION, "--max-unauthenticated-per-ip", "2"]);
    let _a = connect_from(&broker, 2, "a").await;
    let _b = connect_from(&broker, 2, "b").await;
    let mut idle = Vec::new();
    for _ in 0..2 {
        let mut client =
            TcpClient::from_stream(open_from(broker.stomp_addr, 2).await).expect("client");
        client.expect_silence(Duration::from_millis(100)).await;
        idle.push(client);
    }
    let (mut refused, reply) = attempt_from(&broker, 2, &[("login", "c")]).await;
    assert_eq!(
        reply.value("message"),
        "too many connections from your address",
        "{}",
        reply.describe()
    );
    assert!(
        reply.text().contains("not completed CONNECT"),
        "{}",
        reply.describe()
    );
    refused.expect_closed(WAIT).await;
    let _other = connect_from(&broker, 3, "other").await;
}

#[tokio::test]
async fn a_slowloris_never_holds_a_slot_past_the_connect_deadline() {
    let broker = Broker::start(&[
        NO_EXEMPTION,
        "--max-unauthenticated",
        "1",
        "--connect-timeout",
        "1s",
    ]);
    let started = Instant::now();
    let mut slow = open_from(broker.stomp_addr, 2).await;
    // One byte of a CONNECT frame every 100 ms: it is always sending, never done.
    let dribble = tokio::spawn(async move {
        let frame = b"CONNECT\naccept-version:1.2\nhost:localhost\nlogin:slow\n\n\0";
        let mut answer = Vec::new();
        for byte in frame.iter().cycle().take(100) {
            if slow.write_all(&[*byte]).await.is_err() {
                break;
            }
            let mut chunk = [0u8; 512];
            if let Ok(read) =
                tokio::time::timeout(Duration::from_millis(100), slow.read(&mut chunk)).await
            {
                match read {
                    Ok(0) | Err(_) => break,
                    Ok(n) => answer.extend_from_slice(&chunk[..n]),
                }
            }
        }
        (
            String::from_utf8_lossy(&answer).into_owned(),
            started.elapsed(),
        )
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_refused_from(&broker, 3, &[("login", "waiting")], "server busy").await;
    let (answer, closed_after) = dribble.await.expect("dribbler");
    assert!(answer.contains("message:connect timeout"), "{answer:?}");
    assert!(
        closed_after < Duration::from_secs(3),
        "held for {closed_after:?} with a 1 s deadline"
    );
    let _served = eventually_connected(&broker, 3).await;
}

fn broker_with_alice(extra: &[&str]) -> Broker {
    let users = format!("[users]\nalice = \"{}\"\n", broker::hash_password("s3cret"));
    let path = conformance_tests::scratch_file("users.toml", &users);
    let mut args = vec![
        "--users-file",
        path.to_str().expect("UTF-8 path"),
        NO_EXEMPTION,
    ];
    args.extend_from_slice(extra);
    Broker::start(&args)
}

const ALICE: [(&str, &str); 2] = [("login", "alice"), ("passcode", "s3cret")];
const ALICE_WRONG: [(&str, &str); 2] = [("login", "alice"), ("passcode", "guess")];

#[tokio::test]
async fn failed_logins_throttle_the_user_from_failing_addresses_only() {
    let broker = broker_with_alice(&[
        "--login-failures-per-user",
        "3",
        "--login-failures-per-ip",
        "100",
        "--login-backoff",
        "30s",
    ]);
    // 127.0.0.3 has a failed login of its own (for another user).
    let mallory = [("login", "mallory"), ("passcode", "x")];
    assert_refused_from(&broker, 3, &mallory, "authentication failed").await;
    for _ in 0..3 {
        assert_refused_from(&broker, 2, &ALICE_WRONG, "authentication failed").await;
    }
    // Even the right password is refused from the guessing address, without a check.
    assert_refused_from(&broker, 2, &ALICE, "too many failed logins").await;
    // So is any other address that has failed logins of its own.
    assert_refused_from(&broker, 3, &ALICE_WRONG, "too many failed logins").await;
    // Alice, from an address with no failures, is not locked out; her success clears her
    // count, so the guessing address may try again.
    let (_alice, reply) = attempt_from(&broker, 4, &ALICE).await;
    assert_eq!(reply.command, Command::Connected, "{}", reply.describe());
    let (_again, reply) = attempt_from(&broker, 2, &ALICE).await;
    assert_eq!(reply.command, Command::Connected, "{}", reply.describe());
}

#[tokio::test]
async fn failed_logins_block_the_address_for_a_backoff_whatever_the_user() {
    let broker = broker_with_alice(&[
        "--login-failures-per-ip",
        "3",
        "--login-failures-per-user",
        "100",
        "--login-backoff",
        "2s",
    ]);
    for n in 0..3 {
        let login = format!("nobody{n}");
        assert_refused_from(
            &broker,
            2,
            &[("login", &login), ("passcode", "x")],
            "authentication failed",
        )
        .await;
    }
    let refused = Instant::now();
    let (mut client, reply) = attempt_from(&broker, 2, &ALICE).await;
    assert_eq!(
        reply.value("message"),
        "too many failed logins",
        "{}",
        reply.describe()
    );
    assert!(reply.text().contains("retry in "), "{}", reply.describe());
    client.expect_closed(WAIT).await;
    // Other addresses are not affected.
    let (_other, reply) = attempt_from(&broker, 3, &ALICE).await;
    assert_eq!(reply.command, Command::Connected, "{}", reply.describe());
    // The refusal ends with the backoff (2 s after the last failure, which came before it).
    tokio::time::sleep(Duration::from_secs(2).saturating_sub(refused.elapsed())).await;
    let (_later, reply) = attempt_from(&broker, 2, &ALICE).await;
    assert_eq!(reply.command, Command::Connected, "{}", reply.describe());
}

/// Loopback is exempt by default, so the existing suites and benchmarks (all on 127.0.0.1)
/// are never limited per address.
#[tokio::test]
async fn loopback_is_exempt_by_default() {
    let broker = Broker::start(&[
        "--max-connections-per-ip",
        "1",
        "--connect-burst-per-ip",
        "1",
    ]);
    let _a = connect_from(&broker, 2, "a").await;
    let _b = connect_from(&broker, 2, "b").await;
    let _c = broker.client("c").await;
}
