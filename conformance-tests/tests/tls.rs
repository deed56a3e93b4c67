//! Native TLS (docs/security/tls.md): STOMP over TLS and WSS round trips, a verified client
//! certificate as the session's user, untrusted certificates and mismatched logins refused,
//! and certificates reloaded on SIGHUP while open sessions go on.

use std::path::Path;
use std::process::Command as Process;
use std::time::Duration;

use conformance_tests::frame::send;
use conformance_tests::tls::{self, cert_file, client_config};
use conformance_tests::{Broker, Command, FrameExt, TcpClient, WAIT, scratch_file};
use jsonwebtoken::{EncodingKey, Header};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const JWT_SECRET: &str = "conformance-secret-0123456789abcdef";

/// Both TLS listeners on ephemeral loopback ports with the test server certificate, and
/// `extra` flags.
fn tls_broker(extra: &[&str]) -> Broker {
    let mut args = vec![
        "--stomp-tls-listen".to_owned(),
        "127.0.0.1:0".to_owned(),
        "--https-listen".to_owned(),
        "127.0.0.1:0".to_owned(),
        "--tls-cert".to_owned(),
        cert_file("server.pem"),
        "--tls-key".to_owned(),
        cert_file("server-key.pem"),
    ];
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Broker::start(&args)
}

fn stomp_tls(broker: &Broker) -> std::net::SocketAddr {
    broker.stomp_tls_addr.expect("ready line names stomp_tls=")
}

fn https(broker: &Broker) -> std::net::SocketAddr {
    broker.https_addr.expect("ready line names https=")
}

fn jwt(sub: &str) -> String {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
        + 3600;
    jsonwebtoken::encode(
        &Header::default(),
        &serde_json::json!({ "sub": sub, "exp": exp }),
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()).expect("HMAC key"),
    )
    .expect("JWT encodes")
}

#[tokio::test]
async fn stomp_over_tls_round_trip() {
    let broker = tls_broker(&[]);
    let mut alice = tls::stomp_client(
        stomp_tls(&broker),
        client_config(None),
        &[("login", "alice")],
    )
    .await;
    assert_eq!(
        alice
            .connected
            .as_ref()
            .expect("connected")
            .value("user-name"),
        "alice"
    );
    alice.subscribe("t", "/topic/tls.round").await;
    let mut bob =
        tls::stomp_client(stomp_tls(&broker), client_config(None), &[("login", "bob")]).await;
    bob.publish("/topic/tls.round", "over TLS").await;
    let message = alice.expect_message().await;
    assert_eq!(message.text(), "over TLS");
    assert_eq!(message.value("user-id"), "bob");
    // TLS and plain sessions are one broker: a plain publisher reaches the TLS subscriber.
    let mut carol = broker.client("carol").await;
    carol.publish("/topic/tls.round", "from plain TCP").await;
    assert_eq!(alice.expect_message().await.text(), "from plain TCP");
    alice.disconnect().await;
}

#[tokio::test]
async fn wss_round_trip_and_https_routes() {
    let broker = tls_broker(&[]);
    let mut alice = tls::wss_client(https(&broker), client_config(None), "alice").await;
    alice
        .request(
            conformance_tests::frame::subscribe("w", "/topic/wss.round"),
            "sub",
        )
        .await;
    let mut bob =
        tls::stomp_client(stomp_tls(&broker), client_config(None), &[("login", "bob")]).await;
    bob.publish("/topic/wss.round", "over WSS").await;
    let message = alice.expect(Command::Message).await;
    assert_eq!(message.text(), "over WSS");
    assert_eq!(message.value("user-id"), "bob");

    // The HTTP routes of --http-listen are served over HTTPS too.
    let mut stream = tls::connect(https(&broker), client_config(None))
        .await
        .expect("TLS to the HTTPS listener");
    stream
        .write_all(b"GET /health HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await
        .expect("request written");
    let mut response = String::new();
    tokio::time::timeout(WAIT, stream.read_to_string(&mut response))
        .await
        .expect("response in time")
        .expect("response readable");
    assert!(response.starts_with("HTTP/1.0 200"), "{response}");
    assert!(response.contains("\"status\":\"ok\""), "{response}");
}

#[tokio::test]
async fn a_client_certificate_is_the_user_without_a_passcode() {
    // Passcodes are checked (JWT), yet the certificate alone logs alice in.
    let broker = tls_broker(&[
        "--jwt-secret",
        JWT_SECRET,
        "--tls-client-ca",
        &cert_file("ca.pem"),
    ]);
    let mut alice = tls::stomp_client(stomp_tls(&broker), client_config(Some("alice")), &[]).await;
    assert_eq!(
        alice
            .connected
            .as_ref()
            .expect("connected")
            .value("user-name"),
        "alice"
    );
    // A login that names the certificate's user is fine, over WSS too.
    let mut alice_ws = tls::wss_client(https(&broker), client_config(Some("alice")), "alice").await;

    let token = jwt("bob");
    let mut bob = TcpClient::connect_with(
        broker.stomp_addr,
        &[
            ("accept-version", "1.2"),
            ("host", "localhost"),
            ("passcode", &token),
        ],
    )
    .await;
    bob.subscribe("in", "/topic/from.certificates").await;
    let forged = |body: &str| send("/topic/from.certificates", body).header("user-id", "mallory");
    alice.request(forged("over TLS")).await;
    alice_ws.request(forged("over WSS"), "sent").await;
    for body in ["over TLS", "over WSS"] {
        let message = bob.expect_message().await;
        assert_eq!(message.text(), body);
        // The broker-set sender is the certificate's user, whatever the client wrote.
        assert_eq!(message.value("user-id"), "alice");
    }
}

#[tokio::test]
async fn a_login_naming_someone_else_than_the_certificate_is_refused() {
    let broker = tls_broker(&["--tls-client-ca", &cert_file("ca.pem")]);
    let (mut client, reply) = tls::stomp_handshake(
        stomp_tls(&broker),
        client_config(Some("alice")),
        &[("login", "bob"), ("passcode", "anything")],
    )
    .await;
    assert_eq!(reply.command, Command::Error, "{}", reply.describe());
    assert_eq!(reply.value("message"), "authentication failed");
    assert!(
        reply.text().contains("client certificate"),
        "{}",
        reply.describe()
    );
    client.expect_closed(WAIT).await;
}

/// A TLS client presenting `client`'s certificate gets no CONNECTED: the handshake fails
/// (with TLS 1.3 the server's alert arrives on the first read).
async fn assert_handshake_refused(addr: std::net::SocketAddr, client: Option<&str>) {
    let Ok(stream) = tls::connect(addr, client_config(client)).await else {
        return;
    };
    let mut client = TcpClient::from_io(stream);
    let connect = conformance_tests::client::connect_frame(
        Command::Connect,
        &[
            ("accept-version", "1.2"),
            ("host", "localhost"),
            ("login", "mallory"),
        ],
    );
    let _ = client
        .try_send_raw(&conformance_tests::wire::encode(
            &connect,
            conformance_tests::Version::V1_2,
        ))
        .await;
    match client.recv_frame_within(WAIT).await {
        Err(conformance_tests::RecvError::Closed(_)) => {}
        other => panic!("expected the TLS handshake to fail, got {other:?}"),
    }
}

#[tokio::test]
async fn an_untrusted_client_certificate_fails_the_handshake() {
    let broker = tls_broker(&["--tls-client-ca", &cert_file("ca.pem")]);
    assert_handshake_refused(stomp_tls(&broker), Some("mallory")).await;
    assert_handshake_refused(https(&broker), Some("mallory")).await;
    // Optional client certificates: no certificate at all is fine, the login decides.
    let client = tls::stomp_client(
        stomp_tls(&broker),
        client_config(None),
        &[("login", "carol")],
    )
    .await;
    assert_eq!(
        client
            .connected
            .as_ref()
            .expect("connected")
            .value("user-name"),
        "carol"
    );
}

#[tokio::test]
async fn required_client_certificates_refuse_a_client_without_one() {
    let broker = tls_broker(&[
        "--tls-client-ca",
        &cert_file("ca.pem"),
        "--tls-client-auth",
        "required",
    ]);
    assert_handshake_refused(stomp_tls(&broker), None).await;
    let bob = tls::stomp_client(stomp_tls(&broker), client_config(Some("bob")), &[]).await;
    assert_eq!(
        bob.connected
            .as_ref()
            .expect("connected")
            .value("user-name"),
        "bob"
    );
}

/// The leaf a fresh handshake with the STOMP TLS listener sees.
async fn presented_leaf(broker: &Broker) -> Vec<u8> {
    let stream = tls::connect(stomp_tls(broker), client_config(None))
        .await
        .expect("TLS handshake");
    tls::server_leaf(&stream).to_vec()
}

fn leaf_of(path: &Path) -> Vec<u8> {
    tls::pem_certificates(path)[0].to_vec()
}

fn sighup(broker: &Broker) {
    let status = Process::new("kill")
        .args(["-HUP", &broker.pid().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

#[tokio::test]
async fn certificates_reload_on_sighup_and_open_sessions_go_on() {
    let certs = tls::certs();
    // The broker's own copies, so swapping them touches no other test.
    let cert = scratch_file(
        "cert.pem",
        &std::fs::read_to_string(certs.join("server.pem")).expect("server.pem"),
    );
    let key = cert.with_file_name("key.pem");
    std::fs::copy(certs.join("server-key.pem"), &key).expect("key copied");
    let broker = Broker::start(&[
        "--stomp-tls-listen",
        "127.0.0.1:0",
        "--tls-cert",
        cert.to_str().expect("UTF-8"),
        "--tls-key",
        key.to_str().expect("UTF-8"),
    ]);
    let first = leaf_of(&certs.join("server.pem"));
    let second = leaf_of(&certs.join("server2.pem"));
    assert_ne!(first, second);
    assert_eq!(presented_leaf(&broker).await, first);

    let mut old = tls::stomp_client(
        stomp_tls(&broker),
        client_config(None),
        &[("login", "alice")],
    )
    .await;
    old.subscribe("t", "/topic/reload").await;

    std::fs::copy(certs.join("server2.pem"), &cert).expect("cert swapped");
    std::fs::copy(certs.join("server2-key.pem"), &key).expect("key swapped");
    sighup(&broker);
    let deadline = tokio::time::Instant::now() + WAIT;
    while presented_leaf(&broker).await != second {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no reload within {WAIT:?}:\n{}",
            broker.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The session from before the reload still receives and sends.
    let mut new =
        tls::stomp_client(stomp_tls(&broker), client_config(None), &[("login", "bob")]).await;
    new.subscribe("t", "/topic/reload.back").await;
    new.publish("/topic/reload", "after the reload").await;
    assert_eq!(old.expect_message().await.text(), "after the reload");
    old.publish("/topic/reload.back", "still here").await;
    assert_eq!(new.expect_message().await.text(), "still here");

    // A reload that fails keeps the certificates in use.
    std::fs::write(&cert, "not a certificate\n").expect("cert broken");
    sighup(&broker);
    let deadline = tokio::time::Instant::now() + WAIT;
    while !broker.log().contains("TLS reload failed") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no failed reload logged:\n{}",
            broker.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(presented_leaf(&broker).await, second);
    old.publish("/topic/reload.back", "and after a failed one")
        .await;
    assert_eq!(new.expect_message().await.text(), "and after a failed one");
}

#[tokio::test]
async fn tls_sessions_keep_the_connect_timeout_and_a_stalled_handshake_is_closed() {
    let broker = tls_broker(&["--connect-timeout", "300ms"]);
    // Handshake done, no CONNECT: the same ERROR as over plain TCP.
    let stream = tls::connect(stomp_tls(&broker), client_config(None))
        .await
        .expect("TLS handshake");
    let mut idle = TcpClient::from_io(stream);
    idle.expect_error("connect timeout").await;
    idle.expect_closed(WAIT).await;

    // A TCP connection that never starts the TLS handshake is not kept either.
    for addr in [stomp_tls(&broker), https(&broker)] {
        let mut stalled = tokio::net::TcpStream::connect(addr)
            .await
            .expect("TCP connect");
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(WAIT, stalled.read(&mut byte))
            .await
            .expect("the broker closes a stalled handshake within the connect timeout");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    }
}

#[tokio::test]
async fn shutdown_closes_tls_sessions_and_does_not_wait_for_stalled_handshakes() {
    let mut broker = tls_broker(&["--connect-timeout", "60s"]);
    let mut session = tls::stomp_client(
        stomp_tls(&broker),
        client_config(None),
        &[("login", "alice")],
    )
    .await;
    let mut wss = tls::wss_client(https(&broker), client_config(None), "bob").await;
    let _stalled: Vec<_> = futures_util::future::join_all(
        [stomp_tls(&broker), https(&broker)].map(tokio::net::TcpStream::connect),
    )
    .await;
    broker.sigterm();
    session.expect_error("server shutting down").await;
    wss.expect_error("server shutting down").await;
    let exit = broker.wait_exit(Duration::from_secs(5)).await;
    assert!(
        exit.is_some_and(|status| status.success()),
        "{exit:?}\n{}",
        broker.log()
    );
}

#[tokio::test]
async fn heart_beats_flow_over_tls_and_a_silent_tls_client_is_dropped() {
    let broker = tls_broker(&["--heartbeat", "200,200", "--heartbeat-grace", "1.5"]);
    // The client wants one every 300 ms: each must get through rustls's buffer on time.
    let mut listener = tls::stomp_client(
        stomp_tls(&broker),
        client_config(None),
        &[("login", "alice"), ("heart-beat", "0,300")],
    )
    .await;
    let started = tokio::time::Instant::now();
    let mut beats = 0;
    while started.elapsed() < Duration::from_millis(1600) {
        match listener.recv_item(Duration::from_millis(100)).await {
            Ok(conformance_tests::wire::Received::HeartBeat) => beats += 1,
            Ok(other) => panic!("unexpected {other:?}"),
            Err(conformance_tests::RecvError::Timeout) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert!(
        (3..=7).contains(&beats),
        "{beats} heart-beats in 1.6 s at 300 ms"
    );

    // A client that promised heart-beats and sends none: the same ERROR as over TCP.
    let mut silent = tls::stomp_client(
        stomp_tls(&broker),
        client_config(None),
        &[("login", "bob"), ("heart-beat", "100,0")],
    )
    .await;
    silent.expect_error("heart-beat timeout").await;
    silent.expect_closed(WAIT).await;
}

#[tokio::test]
async fn the_client_ca_reloads_on_sighup_too() {
    let certs = tls::certs();
    // Trusting only the other CA at first: alice's certificate (from the test CA) is refused.
    let ca = scratch_file(
        "client-ca.pem",
        &std::fs::read_to_string(certs.join("other-ca.pem")).expect("other-ca.pem"),
    );
    let broker = tls_broker(&["--tls-client-ca", ca.to_str().expect("UTF-8")]);
    assert_handshake_refused(stomp_tls(&broker), Some("alice")).await;

    std::fs::copy(certs.join("ca.pem"), &ca).expect("client CA swapped");
    sighup(&broker);
    let deadline = tokio::time::Instant::now() + WAIT;
    while !broker.log().contains("TLS certificates reloaded") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no reload logged:\n{}",
            broker.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let alice = tls::stomp_client(stomp_tls(&broker), client_config(Some("alice")), &[]).await;
    assert_eq!(
        alice
            .connected
            .as_ref()
            .expect("connected")
            .value("user-name"),
        "alice"
    );
    // And mallory, signed by the CA no longer trusted, is refused now.
    assert_handshake_refused(stomp_tls(&broker), Some("mallory")).await;
}

/// A client certificate for `subject`, signed by the test CA, written as
/// `client-<name>.pem`/`client-<name>-key.pem` into the test PKI directory (openssl, as
/// scripts/test-certs.sh does).
fn issue_client_certificate(name: &str, subject: &str) {
    let dir = tls::certs();
    let run = |args: &[&str]| {
        let output = Process::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .expect("openssl runs");
        assert!(
            output.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    let key = format!("client-{name}-key.pem");
    let csr = format!("client-{name}.csr");
    let ext = format!("client-{name}.ext");
    std::fs::write(
        dir.join(&ext),
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n",
    )
    .expect("extensions written");
    run(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        &key,
    ]);
    run(&["req", "-new", "-key", &key, "-subj", subject, "-out", &csr]);
    run(&[
        "x509",
        "-req",
        "-in",
        &csr,
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca-key.pem",
        "-set_serial",
        "7",
        "-days",
        "1",
        "-sha256",
        "-extfile",
        &ext,
        "-out",
        &format!("client-{name}.pem"),
    ]);
}

#[tokio::test]
async fn a_verified_certificate_that_names_no_user_is_refused_not_downgraded() {
    issue_client_certificate("nocn", "/O=Stompbox Test/OU=no common name");
    issue_client_certificate("slash", "/CN=alice\\/queue");
    let broker = tls_broker(&["--tls-client-ca", &cert_file("ca.pem")]);
    for (client, why) in [
        ("nocn", "exactly one CN"),
        ("slash", "not a valid user name"),
    ] {
        // Dev mode would believe the login: the certificate must not fall back to it.
        let (mut session, reply) = tls::stomp_handshake(
            stomp_tls(&broker),
            client_config(Some(client)),
            &[("login", "carol")],
        )
        .await;
        assert_eq!(
            reply.command,
            Command::Error,
            "{client}: {}",
            reply.describe()
        );
        assert_eq!(reply.value("message"), "authentication failed");
        assert!(
            reply.text().contains("names no user"),
            "{}",
            reply.describe()
        );
        assert!(reply.text().contains(why), "{}", reply.describe());
        session.expect_closed(WAIT).await;
    }
}

#[tokio::test]
async fn admission_counts_tls_connections_and_refuses_before_the_handshake() {
    // Nothing exempt and no trusted proxy (loopback is both by default), so the per-address cap
    // applies to the loopback address tests use, at accept on every listener.
    let broker = tls_broker(&[
        "--admission-exempt=",
        "--trusted-proxy=",
        "--max-connections-per-ip",
        "2",
    ]);
    let mut stomp =
        tls::stomp_client(stomp_tls(&broker), client_config(None), &[("login", "a")]).await;
    let _wss = tls::wss_client(https(&broker), client_config(None), "b").await;

    // The two TLS connections count: a plain one from the same address is refused as usual.
    let mut plain = TcpClient::open(broker.stomp_addr).await;
    let reply = plain
        .handshake(conformance_tests::client::connect_frame(
            Command::Connect,
            &[
                ("accept-version", "1.2"),
                ("host", "localhost"),
                ("login", "c"),
            ],
        ))
        .await;
    assert_eq!(reply.command, Command::Error, "{}", reply.describe());
    assert_eq!(
        reply.value("message"),
        "too many connections from your address"
    );
    // A third TLS connection is closed before any handshake, on either TLS listener.
    for addr in [stomp_tls(&broker), https(&broker)] {
        assert!(
            tls::connect(addr, client_config(None)).await.is_err(),
            "a TLS connection to {addr} over the per-address cap got a handshake"
        );
    }
    // The admitted session is unaffected.
    stomp.subscribe("s", "/topic/admitted").await;
}
