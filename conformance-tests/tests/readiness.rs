//! `/health/live` and `/health/ready`: ready when the store takes writes, Redis is connected
//! (cluster mode) and the node is not draining; 503 naming the part that is not, and ready
//! again by itself when it comes back. The outages are private: a Redis of the test's own, a
//! PostgreSQL database of the test's own whose connections are refused and ended.

use std::time::{Duration, Instant};

use conformance_tests::cluster::{Database, node};
use conformance_tests::{Broker, Redis};
use serde_json::Value;

/// Long enough for a probe (every second, bounded at 2 s) and a Redis reconnect.
const FLIP_WITHIN: Duration = Duration::from_secs(15);

async fn ready(broker: &Broker) -> (u16, Value) {
    let (status, body) = broker
        .http("GET", "/health/ready", None, None)
        .await
        .expect("http listener answers");
    (status, serde_json::from_str(&body).expect("JSON"))
}

/// Polls `/health/ready` until its status is `want`; the last answer.
async fn until_ready_is(broker: &Broker, want: u16) -> Value {
    let deadline = Instant::now() + FLIP_WITHIN;
    loop {
        let (status, body) = ready(broker).await;
        if status == want {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "/health/ready still {status} after {FLIP_WITHIN:?}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn parts(body: &Value) -> Vec<String> {
    body["not_ready"]
        .as_array()
        .expect("not_ready")
        .iter()
        .map(|p| {
            p["part"]
                .as_str()
                .expect("answered as documented")
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn a_fresh_node_is_live_and_ready() {
    let broker = Broker::start(&[]);
    let (status, body) = ready(&broker).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ready"], true);
    assert_eq!(body["not_ready"], serde_json::json!([]));
    let (status, live) = broker
        .http("GET", "/health/live", None, None)
        .await
        .expect("answered as documented");
    assert_eq!(status, 200, "{live}");
    let health: Value =
        serde_json::from_str(&broker.http_get("/health").await).expect("answered as documented");
    assert_eq!(health["status"], "ok");
    assert_eq!(health["ready"], true);
}

#[tokio::test]
async fn readiness_follows_redis_away_and_back() {
    let mut redis = Redis::start();
    let broker = node(&redis, None, &[]);
    until_ready_is(&broker, 200).await;

    redis.kill();
    let body = until_ready_is(&broker, 503).await;
    assert_eq!(parts(&body), ["redis"], "{body}");
    // Liveness is not readiness: the process is fine.
    let (status, _) = broker
        .http("GET", "/health/live", None, None)
        .await
        .expect("answered as documented");
    assert_eq!(status, 200);

    redis.restart();
    until_ready_is(&broker, 200).await;
}

#[tokio::test]
async fn readiness_follows_postgres_away_and_back() {
    let Some(database) = Database::create("readiness_follows_postgres") else {
        return;
    };
    let broker = Broker::start(&["--postgres-url", &database.url]);
    until_ready_is(&broker, 200).await;

    let name = database.name().to_owned();
    database.server_sql(&format!(
        "ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false"
    ));
    database.server_sql(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
    ));
    let body = until_ready_is(&broker, 503).await;
    assert_eq!(parts(&body), ["postgres"], "{body}");

    database.server_sql(&format!(
        "ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true"
    ));
    until_ready_is(&broker, 200).await;
}

/// A private tansu (Kafka API, memory storage) on a free port, killed on drop; `None` when no
/// tansu is installed (`scripts/services.sh up tansu` installs it).
struct Tansu {
    child: std::process::Child,
    port: u16,
}

impl Tansu {
    fn start() -> Option<Tansu> {
        let home = std::env::var("CARGO_HOME")
            .unwrap_or_else(|_| format!("{}/.cargo", std::env::var("HOME").unwrap_or_default()));
        let bin = [
            std::path::PathBuf::from(format!("{home}/bin/tansu")),
            std::path::PathBuf::from("/usr/local/bin/tansu"),
        ]
        .into_iter()
        .find(|p| p.exists())?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = std::process::Command::new(bin)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("tansu starts");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "tansu never listened");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(Tansu { child, port })
    }

    /// SIGSTOP or SIGCONT: a Kafka that stops answering, then answers again with its state.
    fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill(1) runs");
        assert!(status.success());
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn readiness_follows_kafka_away_and_back() {
    let Some(database) = Database::create("readiness_follows_kafka") else {
        return;
    };
    let Some(tansu) = Tansu::start() else {
        let why = "readiness_follows_kafka: no tansu; run `scripts/services.sh up tansu`";
        assert!(
            std::env::var("STOMPBOX_REQUIRE_SERVICES").as_deref() != Ok("1"),
            "{why}"
        );
        eprintln!("SKIPPED {why}");
        return;
    };
    let kafka = format!("127.0.0.1:{}", tansu.port);
    let broker = Broker::start(&["--postgres-url", &database.url, "--kafka-brokers", &kafka]);
    until_ready_is(&broker, 200).await;

    tansu.signal("-STOP");
    let body = until_ready_is(&broker, 503).await;
    assert_eq!(parts(&body), ["kafka"], "{body}");

    tansu.signal("-CONT");
    until_ready_is(&broker, 200).await;
}
