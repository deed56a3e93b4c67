//! Why the configuration could not be loaded. Each message names the flag or key at fault.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::auth::AuthError;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Bad command line (also `--help`/`--version` from `cli::load_from`; `clap::Error::exit`
    /// prints those correctly).
    #[error(transparent)]
    Args(#[from] clap::Error),
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
    #[error("cannot read password from stdin: {0}")]
    Stdin(#[source] std::io::Error),
    #[error("empty password: pass it on stdin or with --password")]
    EmptyPassword,
    #[error(transparent)]
    Hash(#[from] AuthError),
}
