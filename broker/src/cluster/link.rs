//! The Redis client every cluster connection of a node is opened from: plain (`redis://`,
//! `unix://`) or TLS (`rediss://`) on rustls, with the server's certificate checked against
//! `--redis-ca` or the system's roots. There is no way to skip the check (`#insecure` is
//! refused): a node that cannot verify its Redis should not start.

use std::path::Path;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use super::error::ClusterError;
use crate::config::ClusterConfig;

/// The client for `config`'s Redis.
pub(super) fn client(config: &ClusterConfig) -> Result<redis::Client, ClusterError> {
    let url = config.redis_url.as_str();
    let tls = url.starts_with("rediss://") || url.starts_with("valkeys://");
    if !tls {
        if config.redis_ca.is_some() {
            return Err(ClusterError::Tls(
                "--redis-ca is set but --redis-url is not a rediss:// URL".into(),
            ));
        }
        return Ok(redis::Client::open(url)?);
    }
    if url.ends_with("#insecure") {
        return Err(ClusterError::Tls(
            "rediss://…#insecure (no certificate check) is not supported: give the server's CA \
             with --redis-ca"
                .into(),
        ));
    }
    // The redis crate builds its rustls configuration on the process-wide provider; name ring
    // here rather than leave the choice to whichever rustls features the build unified. An
    // `Err` means a provider is installed already (by this function, or the TLS listeners).
    // (Deprecated in rustls 0.23.48 for lacking post-quantum key exchange, which only
    // aws-lc-rs has, and aws-lc-rs needs cmake to build.)
    #[allow(deprecated)]
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Some(ca) = &config.redis_ca else {
        return Ok(redis::Client::open(url)?);
    };
    let root_cert = read_ca(ca)?;
    Ok(redis::Client::build_with_tls(
        url,
        redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(root_cert),
        },
    )?)
}

/// The first connection's failure. A plain URL whose server hung up at once is most often a
/// TLS-only Redis (it drops a connection whose first bytes are not a TLS handshake): say so.
pub(super) fn connect_error(err: redis::RedisError, config: &ClusterConfig) -> ClusterError {
    let plain = config.redis_url.starts_with("redis://");
    let hung_up = err.is_connection_dropped() && !err.is_connection_refusal();
    if plain && hung_up {
        ClusterError::HungUp(err)
    } else {
        ClusterError::Redis(err)
    }
}

/// The PEM file's bytes, once it is known to hold a certificate (the redis crate would accept
/// an empty trust store and fail every handshake later, less clearly).
fn read_ca(path: &Path) -> Result<Vec<u8>, ClusterError> {
    let bad = |why: String| ClusterError::Tls(format!("--redis-ca {}: {why}", path.display()));
    let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no PEM certificate in it".into()));
    }
    Ok(pem)
}
