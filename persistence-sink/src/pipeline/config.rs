//! How the sink batches and retries.

use std::time::Duration;

/// The sink's batching and retry settings.
#[derive(Debug, Clone)]
pub struct SinkConfig {
    pub group_id: String,
    /// Most records per batch of one partition: large enough to amortize the commits, small enough that a
    /// replay after a crash is cheap.
    pub batch_max: usize,
    /// Longest a batch waits to fill once its first record arrived (bounds persistence lag).
    pub batch_linger: Duration,
    /// Cap of the exponential backoff while PostgreSQL (or the dead-letter topic) is
    /// unavailable.
    pub max_backoff: Duration,
    /// Partitions applied at the same time, each on its own connection.
    pub connections: usize,
    /// How long the group waits for a silent member (a crashed or killed sink) before giving
    /// its partitions to the others — and a restarted sink waits for it too. librdkafka's
    /// 45 s default is a long persistence stall after a crash; brokers refuse less than their
    /// `group.min.session.timeout.ms` (6 s by default).
    pub session_timeout: Duration,
}

impl Default for SinkConfig {
    fn default() -> Self {
        SinkConfig {
            group_id: "stompbox-sink".into(),
            batch_max: 10_000,
            batch_linger: Duration::from_millis(20),
            max_backoff: Duration::from_secs(5),
            connections: 4,
            session_timeout: Duration::from_secs(10),
        }
    }
}
