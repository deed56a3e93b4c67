//! The broker's resolved configuration: every knob with its default.
//!
//! Loading (TOML file, `STOMPBOX_*` environment variables, CLI flags; later sources win) lives
//! in `cli.rs`; this module only says what can be configured and why the defaults are what
//! they are.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use chat_store::kafka::KafkaConfig;

/// Fully resolved settings. Built by `cli::load`, or `Config::default()` in tests.
#[derive(Debug, Clone)]
pub struct Config {
    /// STOMP over TCP.
    pub stomp_listen: SocketAddr,
    /// HTTP: WebSocket at `/ws` (later the HTTP API and metrics).
    pub http_listen: SocketAddr,
    /// Directory of the embedded store (used by the chat issue's store).
    pub data_dir: PathBuf,
    /// Node id, feeds message ids; unique per node of a cluster.
    pub node_id: u16,
    /// Cluster mode (`--redis-url`); `None` is the single-node broker.
    pub cluster: Option<ClusterConfig>,
    pub auth: AuthConfig,
    /// Per-destination authorization rules, first match wins; no rules means allow all.
    pub acl: Vec<AclRule>,
    pub limits: Limits,
    pub heartbeat: HeartbeatConfig,
    pub slow_consumer: SlowConsumerPolicy,
    /// WebSocket `Origin` allow-list; empty allows any origin (auth is by passcode, not cookies).
    pub ws_allowed_origins: Vec<String>,
    /// How long shutdown spends closing sessions before it gives up on stragglers.
    pub shutdown_timeout: Duration,
    pub chat: ChatConfig,
    pub storage: StorageConfig,
}

/// Where chat messages live. Neither set: the embedded SQLite store under `data_dir` (one
/// machine, no services). `postgres_url` alone: PostgreSQL directly (every accepted message
/// committed before its RECEIPT; several nodes share history). Both: the write path for
/// scale — accepted messages go to Kafka, a sink (`stompbox-sink`) moves them into
/// PostgreSQL, and reads come from PostgreSQL (docs/persistence.md).
#[derive(Debug, Clone, Default)]
pub struct StorageConfig {
    pub postgres_url: Option<String>,
    pub kafka: Option<KafkaSettings>,
}

/// The streamed store's settings: where Kafka is and how its topics look (`KafkaConfig`, with
/// its defaults and their reasons), plus the broker's own bound on unacknowledged messages.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    pub kafka: KafkaConfig,
    /// Messages accepted but not yet acknowledged by Kafka, at most. Past it new sends are
    /// refused at once (`UNAVAILABLE`) instead of queueing without bound while Kafka is down.
    pub max_pending: usize,
}

impl KafkaSettings {
    pub fn new(brokers: impl Into<String>) -> Self {
        Self {
            kafka: KafkaConfig::new(brokers),
            max_pending: 10_000,
        }
    }
}

/// Cluster mode: nodes sharing one Redis for cross-node routing and presence.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// `redis://[:password@]host:port[/db]`.
    pub redis_url: String,
    /// No node id was configured: claim a free one in Redis (a lease), so a fleet of
    /// identical nodes needs no per-node setting.
    pub claim_node_id: bool,
}

/// The built-in chat application (`/app/...`).
#[derive(Debug, Clone)]
pub struct ChatConfig {
    /// Largest message `content`, in bytes. 16 KiB holds any human-typed message; files go
    /// elsewhere and are linked.
    pub max_content: usize,
    /// A session's presence lapses this long after its last sign of life. The design's 30 s is
    /// two missed 15 s client heart-beats.
    pub presence_ttl: Duration,
    /// Sustained chat requests per second per user (0 disables the limit); a human types a
    /// few per second at most, a runaway client far more.
    pub rate_per_sec: f64,
    /// Requests a user may make at once before the rate applies (a reconnect syncs and
    /// resends a little burst).
    pub rate_burst: f64,
    /// Bearer token of the backend services' HTTP API (`/api/...`); `None` disables the API.
    pub service_token: Option<String>,
}

impl Default for ChatConfig {
    fn default() -> Self {
        Self {
            max_content: 16 * 1024,
            presence_ttl: Duration::from_secs(30),
            rate_per_sec: 20.0,
            rate_burst: 100.0,
            service_token: None,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct AuthConfig {
    /// TOML file of `name = "<argon2 PHC hash>"` lines under `[users]`.
    pub users_file: Option<PathBuf>,
    /// HS256 secret for JWTs carried in `passcode`.
    pub jwt_secret: Option<String>,
    /// PEM file with an RS256 public key for JWTs carried in `passcode`.
    pub jwt_public_key: Option<PathBuf>,
    /// Permit binding a non-loopback address with no authentication configured.
    pub allow_anonymous: bool,
}

impl AuthConfig {
    /// True when any credential source is configured; otherwise the broker is in dev mode.
    pub fn is_configured(&self) -> bool {
        self.users_file.is_some() || self.jwt_secret.is_some() || self.jwt_public_key.is_some()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AclAction {
    Send,
    Subscribe,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct AclRule {
    /// A user name, or `*` for everyone.
    pub user: String,
    /// Which frame the rule governs.
    pub action: AclAction,
    /// Destination prefix; `{user}` is replaced by the principal's name.
    pub prefix: String,
    /// `true` to allow, `false` to deny.
    pub allow: bool,
}

#[derive(Debug, Clone)]
pub struct Limits {
    /// Whole frame (command + headers + body). 4 MiB admits the 1 MiB messages clients send
    /// in practice with room to spare, and bounds what one peer can make us buffer.
    pub max_frame_size: usize,
    /// Headers per frame; real clients send under 15.
    pub max_headers: usize,
    /// One header line; JWTs in `passcode` are the longest legitimate values (a few KiB).
    pub max_header_line: usize,
    /// Body size.
    pub max_body: usize,
    /// Concurrent connections over all listeners; stays under the 20,000 descriptors a process
    /// may hold here, leaving room for files and outbound sockets.
    pub max_connections: usize,
    /// Subscriptions one session may hold.
    pub max_subscriptions: usize,
    /// Time a new connection has to send CONNECT (guards against idle sockets).
    pub connect_timeout: Duration,
    /// Outbound queue of one session, in frames.
    pub outbound_max_frames: usize,
    /// Outbound queue of one session, in bytes.
    pub outbound_max_bytes: usize,
    /// Messages a `/queue` holds while no consumer takes them.
    pub queue_max_messages: usize,
    /// Frames buffered by one open transaction.
    pub max_transaction_frames: usize,
    /// Open transactions per session.
    pub max_transactions: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame_size: 4 * 1024 * 1024,
            max_headers: 64,
            max_header_line: 16 * 1024,
            max_body: 4 * 1024 * 1024,
            max_connections: 18_000,
            max_subscriptions: 1024,
            connect_timeout: Duration::from_secs(10),
            outbound_max_frames: 4096,
            outbound_max_bytes: 16 * 1024 * 1024,
            queue_max_messages: 100_000,
            max_transaction_frames: 10_000,
            max_transactions: 16,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct HeartbeatConfig {
    /// Smallest interval at which the server offers to send heart-beats (0 = never).
    pub send: Duration,
    /// Interval at which the server wants heart-beats from clients (0 = never).
    pub recv: Duration,
    /// Multiplier on the negotiated inbound interval before a silent peer is dropped. Browsers
    /// throttle timers of background tabs to once a minute or less, so 1.0 would drop them.
    pub grace: f64,
}

impl Default for HeartbeatConfig {
    fn default() -> Self {
        Self {
            send: Duration::from_secs(10),
            recv: Duration::from_secs(10),
            grace: 2.0,
        }
    }
}

/// What happens when a session's outbound queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SlowConsumerPolicy {
    /// Send ERROR `slow consumer` and close: the client learns and can resync.
    #[default]
    Disconnect,
    /// Drop the message for this session only (the session stays connected).
    Drop,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            stomp_listen: SocketAddr::from(([127, 0, 0, 1], 61613)),
            http_listen: SocketAddr::from(([127, 0, 0, 1], 15674)),
            data_dir: PathBuf::from("stompbox-data"),
            node_id: 0,
            cluster: None,
            auth: AuthConfig::default(),
            acl: Vec::new(),
            limits: Limits::default(),
            heartbeat: HeartbeatConfig::default(),
            slow_consumer: SlowConsumerPolicy::default(),
            ws_allowed_origins: Vec::new(),
            shutdown_timeout: Duration::from_secs(10),
            chat: ChatConfig::default(),
            storage: StorageConfig::default(),
        }
    }
}
