//! Harness for the black-box conformance suite: each test starts a real `stompbox` process
//! ([`Broker`]), talks to it over raw TCP ([`TcpClient`]) or WebSocket ([`WsClient`]), and
//! asserts what `docs/protocol.md` promises.
//!
//! Frames are read and written by this crate's own [`wire`] module, not by `stomp-codec`, so
//! the codec under test is never its own judge.

pub mod broker;
pub mod client;
pub mod cluster;
pub mod frame;
pub mod redis;
pub mod scrape;
pub mod tls;
pub mod wire;
pub mod ws;

use std::time::Duration;

pub use broker::Broker;
pub use client::{RecvError, TcpClient};
pub use frame::FrameExt;
pub use redis::Redis;
pub use stomp_codec::{Command, Frame, Version};
pub use ws::WsClient;

/// Upper bound on any single wait for the broker: long enough for a loaded two-core machine,
/// short enough that a broken broker fails the test instead of hanging the suite.
pub const WAIT: Duration = Duration::from_secs(5);

/// How long "nothing arrives" is watched for in negative tests. Deliveries on loopback take
/// well under a millisecond, so a few hundred is a wide margin while keeping the suite fast.
pub const QUIET: Duration = Duration::from_millis(300);

/// Writes `contents` to a fresh file under the system temp directory (config files, users
/// files) and returns its path. Files are tiny and left for the OS to clean.
pub fn scratch_file(name: &str, contents: &str) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "stompbox-conformance-files-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("scratch directory can be created");
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("scratch file can be written");
    path
}

/// Asserts the broker still serves new clients: a fresh subscriber gets a fresh publisher's
/// message. Error tests call it after provoking an ERROR, since one bad client must never
/// disturb the others.
pub async fn assert_broker_serves(broker: &Broker) {
    let mut subscriber = broker.client("health-sub").await;
    subscriber.subscribe("health", "/topic/health.check").await;
    let mut publisher = broker.client("health-pub").await;
    publisher
        .publish("/topic/health.check", "still alive")
        .await;
    let message = subscriber.expect_message().await;
    assert_eq!(message.text(), "still alive");
    publisher.disconnect().await;
    subscriber.disconnect().await;
}
