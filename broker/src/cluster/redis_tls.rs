//! TLS on the links to Redis: one server (`rediss://`), a Redis Cluster (`rediss-cluster://`,
//! every shard reached over TLS) and Redis Sentinel (`rediss+sentinel://`, the sentinels and
//! the primary they name both over TLS). The server's certificate is checked against
//! `--redis-ca` or the system's roots, and there is no way to skip the check (`#insecure` is
//! refused): a node that cannot verify its Redis should not start. One value, built once at
//! startup, so the command connection, the subscriber and every reconnect use the same roots.

use std::path::Path;

use redis::{Client, RedisResult, TlsCertificates};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use super::error::ClusterError;
use crate::config::ClusterConfig;

/// The trust settings of a TLS link to Redis.
#[derive(Debug, Clone)]
pub struct RedisTls {
    /// `--redis-ca`'s PEM, or `None` for the system's roots.
    root_cert: Option<Vec<u8>>,
}

impl RedisTls {
    /// The TLS settings for `config`'s link, whose URL is a TLS one (`tls`) or not: `None` for a
    /// plain link, which refuses `--redis-ca` (a CA the operator meant to be used, silently
    /// ignored, would leave the link plain).
    pub fn for_link(config: &ClusterConfig, tls: bool) -> Result<Option<RedisTls>, ClusterError> {
        if !tls {
            if config.redis_ca.is_some() {
                return Err(ClusterError::Tls(
                    "--redis-ca is set but --redis-url is not a rediss:// URL (nor \
                     rediss-cluster://, rediss+sentinel://)"
                        .into(),
                ));
            }
            return Ok(None);
        }
        if config.redis_url.ends_with("#insecure") {
            return Err(ClusterError::Tls(
                "rediss://…#insecure (no certificate check) is not supported: give the server's \
                 CA with --redis-ca"
                    .into(),
            ));
        }
        // The redis crate builds its rustls configuration on the process-wide provider; name
        // ring here rather than leave the choice to whichever rustls features the build
        // unified. An `Err` means a provider is installed already (by an earlier call, or the
        // TLS listeners). (Deprecated in rustls 0.23.48 for lacking post-quantum key exchange,
        // which only aws-lc-rs has, and aws-lc-rs needs cmake to build.)
        #[allow(deprecated)]
        let _ = rustls::crypto::ring::default_provider().install_default();
        let root_cert = config.redis_ca.as_deref().map(read_ca).transpose()?;
        Ok(Some(RedisTls { root_cert }))
    }

    /// The certificates to hand the redis crate, when the roots are `--redis-ca`'s (`None`:
    /// the crate's default, the system's roots).
    pub fn certificates(&self) -> Option<TlsCertificates> {
        self.root_cert.clone().map(|pem| TlsCertificates {
            client_tls: None,
            root_cert: Some(pem),
        })
    }

    /// A client for a `rediss://` URL with these roots.
    pub fn client(&self, url: &str) -> RedisResult<Client> {
        match self.certificates() {
            Some(certs) => Client::build_with_tls(url, certs),
            None => Client::open(url),
        }
    }
}

/// A client for `authority` (`[user:pass@]host:port`), over TLS when `tls` is set: the
/// addresses a Sentinel hands out carry no scheme.
pub fn client_for(authority: &str, tls: Option<&RedisTls>) -> RedisResult<Client> {
    match tls {
        Some(tls) => tls.client(&format!("rediss://{authority}/")),
        None => Client::open(format!("redis://{authority}/")),
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
