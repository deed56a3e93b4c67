//! Helpers for the cluster suite: nodes on one private Redis, and waiting for a condition
//! that becomes true asynchronously (a node's Redis subscription follows a SUBSCRIBE).

use std::path::Path;
use std::time::{Duration, Instant};

use crate::{Broker, Redis};

/// Starts a node of the cluster on `redis` with `extra` flags, sharing `store` when given.
pub fn node(redis: &Redis, store: Option<&Path>, extra: &[&str]) -> Broker {
    let url = redis.url();
    let mut args = vec!["--redis-url", url.as_str()];
    args.extend_from_slice(extra);
    Broker::start_in(store, &args)
}

/// Polls `check` every 20 ms until it holds or `within` passes; panics naming `what`.
pub async fn eventually(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until some node of `redis` is subscribed to `channel`.
pub async fn subscribed(redis: &Redis, channel: &str) {
    subscribed_by(redis, channel, 1).await;
}

/// Waits until `nodes` nodes are subscribed to `channel` (`PUBSUB NUMSUB`).
pub async fn subscribed_by(redis: &Redis, channel: &str, nodes: usize) {
    let what = format!("{nodes} subscriptions to {channel}");
    eventually(&what, crate::WAIT, || {
        let reply = redis.cli(&["PUBSUB", "NUMSUB", channel]);
        reply.get(1).and_then(|n| n.parse::<usize>().ok()) >= Some(nodes)
    })
    .await;
}

/// A fresh database on the PostgreSQL of `scripts/services.sh up`, dropped on drop.
#[derive(Debug)]
pub struct Database {
    server: String,
    name: String,
    /// What `--postgres-url` takes.
    pub url: String,
}

impl Database {
    /// Creates one, or says why not and returns `None`: no PostgreSQL set up (in the
    /// environment or the env file `scripts/services.sh up` writes). Panics instead when
    /// `STOMPBOX_REQUIRE_SERVICES=1` (as `scripts/test.sh` sets it), so a run cannot pass by
    /// skipping.
    pub fn create(test: &str) -> Option<Database> {
        let Some(server) = postgres_server() else {
            let why = format!("{test}: no STOMPBOX_POSTGRES_URL; run `scripts/services.sh up`");
            if std::env::var("STOMPBOX_REQUIRE_SERVICES").is_ok_and(|v| v == "1") {
                panic!("{why} (required: STOMPBOX_REQUIRE_SERVICES=1)");
            }
            eprintln!("SKIPPED {why}");
            return None;
        };
        use std::sync::atomic::{AtomicUsize, Ordering};
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "conformance_{}_{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        psql(&server, &format!("CREATE DATABASE {name}"));
        let base = server.rsplit_once('/').map_or(server.as_str(), |(b, _)| b);
        let url = format!("{base}/{name}");
        Some(Database { server, name, url })
    }
}

impl Database {
    /// Runs `sql` on the server as the suite's user (connected to the server's own
    /// database, so it may act on this one: refuse or end its connections).
    pub fn server_sql(&self, sql: &str) {
        psql(&self.server, sql);
    }

    /// The database's name (for [`Database::server_sql`]).
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        psql(
            &self.server,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

fn psql(server: &str, sql: &str) {
    let output = std::process::Command::new("psql")
        .args([server, "-qc", sql])
        .output()
        .expect("psql can be run");
    assert!(
        output.status.success() || std::thread::panicking(),
        "psql {sql:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `STOMPBOX_POSTGRES_URL` from the environment, else from `.run/services.env` (or
/// `$STOMPBOX_SERVICES_ENV`).
fn postgres_server() -> Option<String> {
    service("STOMPBOX_POSTGRES_URL")
}

/// A variable of `scripts/services.sh up` (`STOMPBOX_REDIS_TLS_URL`, `STOMPBOX_TEST_CERTS`,
/// …): the environment first, else the env file.
pub fn service(key: &str) -> Option<String> {
    if let Ok(value) = std::env::var(key) {
        return Some(value);
    }
    let file = std::env::var_os("STOMPBOX_SERVICES_ENV").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../.run/services.env"),
        std::path::PathBuf::from,
    );
    std::fs::read_to_string(file)
        .ok()?
        .lines()
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim().to_string())
}

/// [`service`], or `None` after saying why — a panic instead under
/// `STOMPBOX_REQUIRE_SERVICES=1`, so a run cannot pass by skipping.
pub fn required_service(key: &str, test: &str) -> Option<String> {
    let value = service(key);
    if value.is_none() {
        let why = format!("{test}: no {key}; run `scripts/services.sh up`");
        if std::env::var("STOMPBOX_REQUIRE_SERVICES").is_ok_and(|v| v == "1") {
            panic!("{why} (required: STOMPBOX_REQUIRE_SERVICES=1)");
        }
        eprintln!("SKIPPED {why}");
    }
    value
}
