//! This node: where it keeps data, who it is in a cluster (node id, the shared Redis), how
//! long it takes to stop, and what it logs.

use std::path::PathBuf;
use std::time::Duration;

use super::error::ConfigError;
use super::setting::settings;

/// The log filter when none is configured: lifecycle events without per-frame noise.
pub const DEFAULT_LOG_FILTER: &str = "info";

settings! {
    /// The node's settings as written; resolved into `Config`'s top-level fields and its
    /// [`ClusterConfig`].
    pub struct NodeSettings, layer NodeLayer, heading None;

    /// Directory of the embedded store.
    data_dir: PathBuf = PathBuf::from("stompbox-data"),
        "DIR", "Directory of the embedded store";
    /// Feeds message ids; unique per node of a cluster.
    node_id: u16 = 0,
        "N", "Node id, unique per node of a cluster; feeds message ids";
    /// Cluster mode; unset is the single-node broker.
    redis_url: Option<String> = None,
        "URL", "Redis of a cluster (redis://host:port, or rediss:// for TLS; a primary behind Redis Sentinel: redis+sentinel://host:port,host:port,.../MASTER_NAME; a Redis Cluster: redis-cluster://host:port,host:port,...); enables cluster mode. Without --node-id the node claims a free id there",
        hide_env_values(true);
    /// The private CA of a `rediss://` Redis; unset trusts the system's roots.
    redis_ca: Option<PathBuf> = None,
        "FILE", "PEM of the CA that signed the Redis server's certificate (rediss:// only); default: the system's roots";
    /// How long shutdown spends closing sessions before it gives up on stragglers.
    shutdown_timeout: Duration = Duration::from_secs(10),
        "DURATION", "Time shutdown spends closing sessions before giving up on stragglers";
    /// A `tracing_subscriber::EnvFilter` directive string.
    log: String = DEFAULT_LOG_FILTER.to_owned(),
        "FILTER", "Log filter in tracing EnvFilter syntax, e.g. `info,stompbox=debug`";
    /// Log lines as text for people, or one JSON object per line for a log pipeline.
    log_format: LogFormat = LogFormat::Text,
        "FORMAT", "Log line format: text, or json (one object per line, fields as keys)";
    /// How long a draining node answers not-ready while still serving and accepting, so load
    /// balancers polling `/health/ready` stop sending it clients before its listeners close.
    drain_delay: Duration = Duration::from_secs(5),
        "DURATION", "On SIGTERM (or POST /admin/drain), how long /health/ready answers 503 before the listeners close";
    /// Time over which a draining node closes its sessions, evenly spaced, so their clients do
    /// not all reconnect to the other nodes in the same instant.
    drain_period: Duration = Duration::from_secs(5),
        "DURATION", "Time over which a draining node closes its sessions (evenly spaced), after the drain delay";
}

/// How log lines are written (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    /// Human-readable lines (colours on a terminal).
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `fields` (the event's fields
    /// as keys: a closed session's `session`, `principal`, `reason`).
    Json,
}

impl std::fmt::Display for LogFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Text => "text",
            Self::Json => "json",
        })
    }
}

impl super::setting::Value for LogFormat {
    fn parser() -> clap::builder::ValueParser {
        use clap::builder::{PossibleValuesParser, TypedValueParser};
        let parser = PossibleValuesParser::new(["text", "json"]).map(|s| match s.as_str() {
            "json" => LogFormat::Json,
            _ => LogFormat::Text,
        });
        clap::builder::ValueParser::new(parser)
    }

    fn deserialize<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        <Self as serde::Deserialize>::deserialize(deserializer)
    }

    fn shown(&self) -> Option<String> {
        Some(self.to_string())
    }
}

/// Cluster mode: nodes sharing one Redis for cross-node routing and presence.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// `redis://[:password@]host:port[/db]`, `rediss://` for TLS, the sentinels of one primary:
    /// `redis+sentinel://[user:pass@]host:port,…/MASTER_NAME`, or a Redis Cluster's seed nodes:
    /// `redis-cluster://host:port,host:port,…`.
    pub redis_url: String,
    /// PEM of the CA a `rediss://` server's certificate must lead to; `None`: the system's.
    pub redis_ca: Option<PathBuf>,
    /// No node id was configured: claim a free one in Redis (a lease), so a fleet of
    /// identical nodes needs no per-node setting.
    pub claim_node_id: bool,
}

/// Message ids hold 10 bits of node id.
pub(super) fn check_node_id(node_id: u16) -> Result<(), ConfigError> {
    if node_id > crate::id::MAX_NODE_ID {
        return Err(ConfigError::Invalid {
            key: "node_id",
            reason: format!(
                "{node_id} is above {} (message ids hold 10 bits of node id)",
                crate::id::MAX_NODE_ID
            ),
        });
    }
    Ok(())
}

/// A filter that does not parse would only fail later, when logging starts.
pub(super) fn check_log_filter(log_filter: &str) -> Result<(), ConfigError> {
    tracing_subscriber::EnvFilter::try_new(log_filter).map_err(|e| ConfigError::Invalid {
        key: "log",
        reason: format!("{log_filter:?} is not a tracing filter: {e}"),
    })?;
    Ok(())
}
