//! TLS on the broker's links to its services, against the real PostgreSQL (ssl=on) and the
//! TLS-only Redis of `scripts/services.sh`: chat on PostgreSQL over `sslmode=verify-full`, a
//! two-node cluster over `rediss://` with `--redis-ca`, and a broker that refuses to start on
//! a link it cannot verify (or that is not TLS where TLS is all there is), saying why. Also
//! `--kafka-option`: a property librdkafka refuses fails the start with librdkafka's message.

use std::path::PathBuf;
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

use conformance_tests::cluster::{Database, eventually, required_service};
use conformance_tests::frame;
use conformance_tests::{Broker, Command, Frame, FrameExt, TcpClient, WAIT, broker};
use serde_json::{Value, json};

/// A broker that fails at start: connecting plus the Redis connect timeout, on a loaded machine.
const FAIL_WITHIN: Duration = Duration::from_secs(30);

/// A name no concurrent run shares: the TLS Redis is one server for every test process.
fn unique(name: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{name}{}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

struct Services {
    postgres_tls: String,
    redis_tls: String,
    certs: PathBuf,
}

impl Services {
    fn get(test: &str) -> Option<Services> {
        Some(Services {
            postgres_tls: required_service("STOMPBOX_POSTGRES_TLS_URL", test)?,
            redis_tls: required_service("STOMPBOX_REDIS_TLS_URL", test)?,
            certs: PathBuf::from(required_service("STOMPBOX_TEST_CERTS", test)?),
        })
    }

    fn pem(&self, name: &str) -> String {
        self.certs.join(name).display().to_string()
    }

    /// The TLS URL of `database` (created through the plain URL).
    fn postgres_tls_of(&self, database: &Database) -> String {
        let name = database.url.rsplit('/').next().expect("database name");
        let (server, query) = self
            .postgres_tls
            .split_once('?')
            .expect("TLS URL has a query");
        let base = server.rsplit_once('/').expect("URL has a path").0;
        format!("{base}/{name}?{query}")
    }

    /// `redis-cli` on the TLS port, trusting the test CA.
    fn redis_cli(&self, args: &[&str]) -> Vec<String> {
        let port = self
            .redis_tls
            .trim_end_matches('/')
            .rsplit(':')
            .next()
            .expect("port");
        let output = Process::new("redis-cli")
            .args([
                "--tls",
                "--cacert",
                &self.pem("ca.pem"),
                "-h",
                "localhost",
                "-p",
                port,
            ])
            .args(args)
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// Runs the broker with `args`, expects it to exit non-zero without printing its ready line,
/// and returns its stderr.
fn start_fails(args: &[&str]) -> String {
    let scratch = std::env::temp_dir().join(unique("stompbox-tls-fail-"));
    std::fs::create_dir_all(&scratch).expect("scratch directory");
    let log = scratch.join("stderr.log");
    let mut command = Process::new(broker::binary());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("STOMPBOX_") {
            command.env_remove(name);
        }
    }
    let mut child = command
        .args([
            "--stomp-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(scratch.join("data"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("broker starts");
    let deadline = Instant::now() + FAIL_WITHIN;
    let status = loop {
        if let Some(status) = child.try_wait().expect("child can be polled") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("broker {args:?} still running after {FAIL_WITHIN:?}; expected it to fail");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&scratch);
    assert!(!status.success(), "broker {args:?} exited 0:\n{stderr}");
    println!("failed to start as expected: {args:?}\n{stderr}");
    stderr
}

/// SEND `/app/<action>` with a receipt; the MESSAGEs before the RECEIPT, and the RECEIPT.
async fn app(client: &mut TcpClient, action: &str, body: Value) -> (Vec<Frame>, Frame) {
    let receipt = unique("r-");
    let send =
        frame::send(&format!("/app/{action}"), body.to_string()).header("receipt", receipt.clone());
    client.send(&send).await;
    let mut before = Vec::new();
    loop {
        let f = client.recv_frame().await;
        match f.command {
            Command::Receipt => {
                assert_eq!(f.value("receipt-id"), receipt);
                return (before, f);
            }
            Command::Message => before.push(f),
            _ => panic!("{action} got {}", f.describe()),
        }
    }
}

fn json_of(f: &Frame) -> Value {
    serde_json::from_slice(&f.body).unwrap_or_else(|_| panic!("JSON body: {}", f.describe()))
}

/// alice (on `a`) sends bob (on `b`) a chat message; bob gets it live, and a new session of
/// bob gets it again from the store by sync.
async fn chat(a: &Broker, b: &Broker, alice: &str, bob: &str, bob_live: impl AsyncFnOnce()) {
    let id = send_and_deliver(a, b, alice, bob, bob_live).await;
    let mut again = b.client(bob).await;
    again.subscribe("m", "/user/queue/messages").await;
    again.subscribe("s", "/user/queue/sync").await;
    let (replay, _) = app(&mut again, "chat.sync", json!({"afterMessageId": "0"})).await;
    assert_eq!(replay.len(), 2, "{replay:?}");
    assert_eq!(json_of(&replay[0])["messageId"], id.as_str());
}

/// alice (on `a`) sends bob (on `b`) a chat message: its RECEIPT says it is stored, and bob
/// gets it live. Returns its message id.
async fn send_and_deliver(
    a: &Broker,
    b: &Broker,
    alice: &str,
    bob: &str,
    bob_live: impl AsyncFnOnce(),
) -> String {
    let mut bob_session = b.client(bob).await;
    bob_session.subscribe("m", "/user/queue/messages").await;
    bob_live().await;
    let mut alice_session = a.client(alice).await;
    let send = json!({"recipientId": bob, "content": "over TLS", "clientMessageId": "c1"});
    let (_, receipt) = app(&mut alice_session, "chat.send", send).await;
    let id = receipt.value("message-id").to_string();
    let m = json_of(&bob_session.expect_message().await);
    assert_eq!(
        (m["content"].as_str(), m["senderId"].as_str()),
        (Some("over TLS"), Some(alice))
    );
    assert_eq!(m["messageId"], id.as_str());
    id
}

#[tokio::test]
async fn chat_is_stored_in_postgres_over_verify_full() {
    let (Some(services), Some(database)) = (
        Services::get("chat on PostgreSQL over TLS"),
        Database::create("chat_on_postgres_over_tls"),
    ) else {
        return;
    };
    let url = services.postgres_tls_of(&database);
    assert!(url.contains("sslmode=verify-full"), "{url}");
    let broker = Broker::start(&["--postgres-url", &url]);
    chat(&broker, &broker, "alice", "bob", async || {}).await;
}

#[tokio::test]
async fn a_broker_will_not_start_on_a_postgres_it_cannot_verify() {
    let Some(services) = Services::get("PostgreSQL it cannot verify") else {
        return;
    };
    let tls = &services.postgres_tls;
    let other_ca = tls.replace("ca.pem", "other-ca.pem");
    let stderr = start_fails(&["--postgres-url", &other_ca]);
    assert!(
        stderr.contains("invalid peer certificate: UnknownIssuer"),
        "{stderr}"
    );

    // The server's certificate names localhost and 127.0.0.1, not wrong.test.
    let wrong_name = tls.replacen("@localhost:", "@wrong.test:", 1) + "&hostaddr=127.0.0.1";
    let stderr = start_fails(&["--postgres-url", &wrong_name]);
    assert!(
        stderr.contains("not valid for name \"wrong.test\""),
        "{stderr}"
    );

    let no_ca = format!(
        "{}?sslmode=verify-full",
        tls.split_once('?').expect("query").0
    );
    let stderr = start_fails(&["--postgres-url", &no_ca]);
    assert!(stderr.contains("need sslrootcert"), "{stderr}");
}

#[tokio::test]
async fn a_cluster_delivers_across_nodes_over_rediss() {
    let (Some(services), Some(database)) = (
        Services::get("cluster over rediss"),
        Database::create("cluster_over_rediss"),
    ) else {
        return;
    };
    let postgres = services.postgres_tls_of(&database);
    let ca = services.pem("ca.pem");
    let args = [
        "--redis-url",
        services.redis_tls.as_str(),
        "--redis-ca",
        ca.as_str(),
        "--postgres-url",
        postgres.as_str(),
    ];
    let a = Broker::start(&args);
    let b = Broker::start(&args);
    let (alice, bob) = (unique("alice"), unique("bob"));
    let channel = format!("sbx:u:{bob}");
    let live = async || {
        eventually("bob's channel subscribed over TLS", WAIT, || {
            services
                .redis_cli(&["PUBSUB", "NUMSUB", &channel])
                .get(1)
                .map(String::as_str)
                == Some("1")
        })
        .await;
    };
    chat(&a, &b, &alice, &bob, live).await;
}

#[tokio::test]
async fn a_node_will_not_start_on_a_redis_link_it_cannot_secure() {
    let Some(services) = Services::get("redis link it cannot secure") else {
        return;
    };
    let tls = services.redis_tls.as_str();
    // Plain RESP to the TLS-only port.
    let plain = tls.replacen("rediss://", "redis://", 1);
    let stderr = start_fails(&["--redis-url", &plain]);
    assert!(stderr.contains("the URL is rediss://"), "{stderr}");
    // TLS, but the test CA is not among the system's roots.
    let stderr = start_fails(&["--redis-url", tls]);
    assert!(stderr.contains("UnknownIssuer"), "{stderr}");
    // The wrong CA.
    let stderr = start_fails(&[
        "--redis-url",
        tls,
        "--redis-ca",
        &services.pem("other-ca.pem"),
    ]);
    assert!(stderr.contains("UnknownIssuer"), "{stderr}");
    // No certificate check at all is not on offer.
    let stderr = start_fails(&["--redis-url", &format!("{tls}#insecure")]);
    assert!(stderr.contains("#insecure"), "{stderr}");
    // A CA for a plain link is a mistake, not something to ignore.
    let stderr = start_fails(&["--redis-url", &plain, "--redis-ca", &services.pem("ca.pem")]);
    assert!(stderr.contains("not a rediss:// URL"), "{stderr}");
}

#[tokio::test]
async fn kafka_options_reach_librdkafka() {
    let (Some(kafka), Some(database)) = (
        required_service("STOMPBOX_KAFKA_BROKERS", "--kafka-option"),
        Database::create("kafka_option"),
    ) else {
        return;
    };
    let common = [
        "--kafka-brokers",
        kafka.as_str(),
        "--postgres-url",
        database.url.as_str(),
    ];
    let bad = [&common[..], &["--kafka-option", "no.such.property=1"]].concat();
    let stderr = start_fails(&bad);
    assert!(
        stderr.contains("No such configuration property"),
        "{stderr}"
    );
    let bad_value = [&common[..], &["--kafka-option", "socket.timeout.ms=soon"]].concat();
    let stderr = start_fails(&bad_value);
    assert!(stderr.contains("socket.timeout.ms"), "{stderr}");
    let good = [
        &common[..],
        &["--kafka-option", "client.id=stompbox-tls-test"],
    ]
    .concat();
    let broker = Broker::start(&good);
    // Accepted means acknowledged by Kafka (sync would read what a sink moved to PostgreSQL).
    send_and_deliver(&broker, &broker, "alice", "bob", async || {}).await;
}
