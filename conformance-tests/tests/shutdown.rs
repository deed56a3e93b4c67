//! Graceful shutdown on SIGTERM: every client is told `server shutting down`, the process
//! exits 0 in bounded time, and no new connection is accepted. With a drain delay, in this
//! order: not ready first while still serving and accepting, then no new connections, then
//! the sessions closed; nothing accepted is lost.

use std::time::{Duration, Instant};

use conformance_tests::ws::WsClient;
use conformance_tests::{Broker, Command, FrameExt, TcpClient, WAIT};

/// Shutdown has this long to finish; the broker's own bound comes from --shutdown-timeout.
const EXIT_WITHIN: Duration = Duration::from_secs(5);

#[tokio::test]
async fn sigterm_tells_clients_and_exits_zero() {
    let mut broker = Broker::start(&["--shutdown-timeout", "2s"]);
    let mut tcp = broker.client("tcp").await;
    tcp.subscribe("s", "/topic/shutdown").await;
    let mut idle = broker.client("idle").await;
    let mut ws = WsClient::connect(&broker.ws_url(), "ws").await;

    broker.sigterm();
    tcp.expect_error("server shutting down").await;
    idle.expect_error("server shutting down").await;
    ws.expect_error("server shutting down").await;
    tcp.expect_closed(WAIT).await;
    idle.expect_closed(WAIT).await;
    ws.expect_closed(WAIT).await;

    let status = broker
        .wait_exit(EXIT_WITHIN)
        .await
        .unwrap_or_else(|| panic!("broker still running {EXIT_WITHIN:?} after SIGTERM"));
    assert!(status.success(), "exit status {status}");
}

#[tokio::test]
async fn sigterm_with_no_clients_exits_zero_promptly() {
    let mut broker = Broker::start(&[]);
    let status = broker
        .stop_gracefully(EXIT_WITHIN)
        .await
        .expect("exited after SIGTERM");
    assert!(status.success(), "exit status {status}");
}

#[tokio::test]
async fn new_connections_are_refused_after_shutdown() {
    let mut broker = Broker::start(&["--shutdown-timeout", "2s"]);
    let mut client = broker.client("c").await;
    broker.sigterm();
    client.expect_error("server shutting down").await;
    // The listener is closed from the moment shutdown starts: a new connection either fails
    // outright or is closed without ever being served.
    match TcpClient::try_open(broker.stomp_addr).await {
        Err(_) => {}
        Ok(mut late) => {
            let _ = late
                .try_send_raw(b"CONNECT\naccept-version:1.2\nhost:localhost\n\n\0")
                .await;
            match late.recv_frame_within(WAIT).await {
                Err(conformance_tests::RecvError::Closed(_)) => {}
                Ok(frame) if frame.command == Command::Error => {}
                other => panic!("a connection made during shutdown was served: {other:?}"),
            }
        }
    }
    let status = broker.wait_exit(EXIT_WITHIN).await.expect("exited");
    assert!(status.success(), "exit status {status}");
    assert!(
        TcpClient::try_open(broker.stomp_addr).await.is_err(),
        "port still accepting after exit"
    );
}

#[tokio::test]
async fn messages_routed_before_shutdown_are_delivered_first() {
    let mut broker = Broker::start(&["--shutdown-timeout", "2s"]);
    let mut subscriber = broker.client("sub").await;
    subscriber.subscribe("s", "/topic/last.words").await;
    let mut publisher = broker.client("pub").await;
    for i in 0..10 {
        publisher.publish("/topic/last.words", i.to_string()).await;
    }
    broker.sigterm();
    for i in 0..10 {
        let frame = subscriber.recv_frame().await;
        assert_eq!(
            frame.command,
            Command::Message,
            "message {i}: {}",
            frame.describe()
        );
        assert_eq!(frame.text(), i.to_string());
    }
    subscriber.expect_error("server shutting down").await;
    let status = broker.wait_exit(EXIT_WITHIN).await.expect("exited");
    assert!(status.success());
}

/// `/health/ready`'s status, or `None` once the HTTP listener no longer answers.
async fn ready_status(broker: &Broker) -> Option<u16> {
    broker
        .http("GET", "/health/ready", None, None)
        .await
        .ok()
        .map(|(status, _)| status)
}

#[tokio::test]
async fn drain_goes_not_ready_then_stops_accepting_then_closes_sessions() {
    let token = "svc";
    let data = std::env::temp_dir().join(format!("stompbox-drain-{}", std::process::id()));
    let args = [
        "--drain-delay",
        "2s",
        "--drain-period",
        "200ms",
        "--shutdown-timeout",
        "2s",
        "--service-token",
        token,
    ];
    let mut broker = Broker::start_in(Some(&data), &args);
    let mut watcher = broker.client("watcher").await;
    watcher.subscribe("s", "/topic/drain").await;
    let mut worker = broker.client("worker").await;
    worker.subscribe("q", "/queue/drain.jobs").await;
    assert_eq!(ready_status(&broker).await, Some(200));

    broker.sigterm();
    // 1. Not ready, while the session is still served and new connections are accepted.
    let deadline = Instant::now() + WAIT;
    while ready_status(&broker).await != Some(503) {
        assert!(Instant::now() < deadline, "never went not-ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, body) = broker
        .http("GET", "/health/ready", None, None)
        .await
        .expect("answered as documented");
    assert!(body.contains("draining"), "{body}");
    watcher.publish("/topic/drain", "still served").await;
    assert_eq!(watcher.expect_message().await.text(), "still served");
    let mut late = broker.client("late").await;
    // Accepted while not ready: a queue message, and a chat message stored (its answer comes
    // after durable storage).
    late.publish("/queue/drain.jobs", "job").await;
    assert_eq!(worker.expect_message().await.text(), "job");
    let chat = serde_json::json!({
        "senderId": "bot", "recipientId": "watcher", "content": "stored before drain",
        "clientMessageId": "drain-1",
    })
    .to_string();
    let (status, posted) = broker
        .http("POST", "/api/messages", Some(token), Some(&chat))
        .await
        .expect("answered as documented");
    assert_eq!(status, 201, "{posted}");
    let posted: serde_json::Value = serde_json::from_str(&posted).expect("answered as documented");

    // 2. Then the session is closed with the reconnect-elsewhere ERROR; by then the
    // listeners are closed, so a reconnect must go to another node.
    let error = watcher.expect_error("server shutting down").await;
    assert!(
        error.text().contains("reconnect to another node"),
        "{}",
        error.text()
    );
    assert!(
        TcpClient::try_open(broker.stomp_addr).await.is_err(),
        "still accepting after closing sessions"
    );
    late.expect_error("server shutting down").await;
    let status = broker.wait_exit(EXIT_WITHIN).await.expect("exited");
    assert!(status.success(), "exit status {status}");

    // 3. Nothing accepted was lost: the chat message is in the store.
    let restarted = Broker::start_in(Some(&data), &["--service-token", token]);
    let conversation = posted["conversationId"]
        .as_str()
        .expect("answered as documented");
    let path = format!("/api/conversations/{conversation}/messages?asUser=watcher");
    let (status, history) = restarted
        .http("GET", &path, Some(token), None)
        .await
        .expect("answered as documented");
    assert_eq!(status, 200, "{history}");
    assert!(history.contains("stored before drain"), "{history}");
    drop(restarted);
    let _ = std::fs::remove_dir_all(&data);
}

#[tokio::test]
async fn admin_drain_runs_the_same_sequence_and_exits() {
    let mut broker = Broker::start(&["--admin-token", "adm", "--drain-delay", "300ms"]);
    let mut client = broker.client("c").await;
    let (status, _) = broker
        .http("POST", "/admin/drain", Some("adm"), None)
        .await
        .expect("answered as documented");
    assert_eq!(status, 202);
    client.expect_error("server shutting down").await;
    let status = broker.wait_exit(EXIT_WITHIN).await.expect("exited");
    assert!(status.success(), "exit status {status}");
}

/// One client that keeps the chat application busy (a send and two store reads per round,
/// receipts and answers drained, bytes received counted in `received`) until the broker closes
/// its connection.
async fn chat_load(
    addr: std::net::SocketAddr,
    login: String,
    received: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::sync::atomic::Ordering;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(stream) = tokio::net::TcpStream::connect(addr).await else {
        return;
    };
    let (mut read, mut write) = stream.into_split();
    let drain = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n @ 1..) = read.read(&mut buf).await {
            received.fetch_add(n, Ordering::Relaxed);
        }
    });
    let connect = format!("CONNECT\naccept-version:1.2\nhost:localhost\nlogin:{login}\n\n\0");
    let mut round = 0u64;
    let mut out = connect.into_bytes();
    loop {
        for (action, body) in [
            (
                "chat.send",
                format!(r#"{{"recipientId":"{login}-peer","content":"m{round}"}}"#),
            ),
            (
                "chat.sync",
                r#"{"afterMessageId":"0","limit":100}"#.to_string(),
            ),
            ("conversation.list", "{}".to_string()),
        ] {
            out.extend_from_slice(
                format!(
                    "SEND\ndestination:/app/{action}\nreceipt:{action}-{round}\ncontent-length:{}\n\n{body}\0",
                    body.len()
                )
                .as_bytes(),
            );
        }
        if write.write_all(&out).await.is_err() {
            break;
        }
        out.clear();
        round += 1;
        // Busy, not flooded: every client gets connected and answered on a small machine.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let _ = drain.await;
}

/// Issue 17, item 7: shutting down while clients keep the chat store busy is not an error:
/// requests cut short by the shutdown are not logged at ERROR (they were, once per request:
/// `read task failed: task cancelled`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_under_chat_load_logs_no_errors() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let mut broker = Broker::start(&["--shutdown-timeout", "1s"]);
    let received = Arc::new(AtomicUsize::new(0));
    let load: Vec<_> = (0..16)
        .map(|i| {
            let received = Arc::clone(&received);
            tokio::spawn(chat_load(broker.stomp_addr, format!("load{i}"), received))
        })
        .collect();
    // Under load before stopping: receipts and answers (a few hundred bytes each) coming back.
    let started = Instant::now();
    while received.load(Ordering::Relaxed) < 64 * 1024 {
        assert!(
            started.elapsed() < WAIT,
            "no load reached the broker: {} bytes back\n{}",
            received.load(Ordering::Relaxed),
            broker.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    broker.sigterm();
    let status = broker
        .wait_exit(EXIT_WITHIN)
        .await
        .unwrap_or_else(|| panic!("broker still running {EXIT_WITHIN:?} after SIGTERM"));
    assert!(status.success(), "exit status {status}");
    for task in load {
        task.await.expect("load task");
    }
    let log = broker.log();
    let errors: Vec<&str> = log.lines().filter(|l| l.contains("ERROR")).collect();
    assert!(
        errors.is_empty(),
        "{} ERROR lines at shutdown, first: {:?}",
        errors.len(),
        errors.first()
    );
}
