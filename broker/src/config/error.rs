//! Why the configuration was refused. Each message names the flag or key at fault.

use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path}: {source}")]
    ParseFile {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error("invalid {key}: {reason}")]
    Invalid { key: &'static str, reason: String },
    #[error(
        "refusing to start: {listener} listens on {addr}, which other hosts can reach, and no \
         authentication is configured, so anyone could connect as any user. Configure \
         --users-file, --jwt-secret or --jwt-public-key; or bind a loopback address such as \
         127.0.0.1; or pass --allow-anonymous to accept unauthenticated clients on purpose"
    )]
    Unauthenticated {
        listener: &'static str,
        addr: SocketAddr,
    },
}
