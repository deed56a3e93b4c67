//! Why cluster mode could not start. Once running, Redis failures are not errors to the
//! caller: they are logged, counted (`Health`) and retried.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ClusterError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// A plain `redis://` or `redis-cluster://` link the server closed at once.
    #[error(
        "redis: {0} (the server closed a plain connection: if it only speaks TLS, the URL is \
         rediss:// or rediss-cluster://)"
    )]
    HungUp(redis::RedisError),
    /// A `rediss://` link that cannot be set up (the CA file, an unsupported option).
    #[error("redis TLS: {0}")]
    Tls(String),
    /// A `redis+sentinel://` link that cannot start: a bad URL, or no primary resolved.
    #[error("redis sentinel: {0}")]
    Sentinel(String),
    #[error("no free node id in Redis: all {0} are leased by live nodes")]
    NoFreeNodeId(u16),
    #[error("node id {0} is leased by another live node; pick another or omit --node-id")]
    NodeIdTaken(u16),
}
