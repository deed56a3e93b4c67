//! Where a node's Redis is, and how its connections are opened: one server, plain (`redis://`,
//! `unix://`) or TLS (`rediss://`) on rustls, with the server's certificate checked against
//! `--redis-ca` or the system's roots (there is no way to skip the check: `#insecure` is
//! refused, a node that cannot verify its Redis should not start); one primary with replicas
//! behind Redis Sentinel, `redis+sentinel://[user:pass@]host:port,…/MASTER_NAME` (the
//! sentinels' addresses: `sentinel.rs`); or a Redis Cluster named by its seed nodes,
//! `redis-cluster://host:port,host:port,…`. Sentinel and Cluster are plain only: TLS to them is
//! not wired yet and is refused at startup rather than half supported.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use redis::AsyncConnectionConfig;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterClientBuilder};

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use super::error::ClusterError;
use super::primary::Primary;
use super::redis_link::Conn;
use super::sentinel::{self, Sentinels};
use crate::config::ClusterConfig;

/// Per-command limits on the shared connection: a call during an outage fails fast (and is
/// counted) instead of stalling the publisher or a chat operation.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

const CLUSTER_SCHEME: &str = "redis-cluster://";

/// The node's Redis: one server, the sentinels of one primary, or a cluster's seed nodes
/// (`redis://host:port/` each).
#[derive(Debug, Clone)]
pub enum Link {
    Single(Box<redis::Client>),
    Sentinel(Arc<Sentinels>),
    Cluster(Vec<String>),
}

impl Link {
    pub(super) fn open(config: &ClusterConfig) -> Result<Link, ClusterError> {
        let url = config.redis_url.as_str();
        if url.starts_with("rediss-cluster://") || url.starts_with("valkeys-cluster://") {
            return Err(ClusterError::Tls(
                "TLS to a Redis Cluster is not supported yet: use redis-cluster:// on a private \
                 network, or one server over rediss://"
                    .into(),
            ));
        }
        if url.starts_with(sentinel::TLS_SCHEME) {
            return Err(ClusterError::Tls(
                "TLS to Redis Sentinel is not supported yet (it needs TLS to the sentinels and \
                 to the primary): use redis+sentinel:// on a private network"
                    .into(),
            ));
        }
        let plain_only = |scheme: &str| {
            ClusterError::Tls(format!(
                "--redis-ca is set but --redis-url is a plain {scheme} URL"
            ))
        };
        if url.starts_with(sentinel::SCHEME) {
            if config.redis_ca.is_some() {
                return Err(plain_only(sentinel::SCHEME));
            }
            let sentinels: Sentinels = url
                .parse()
                .map_err(|e: sentinel::UrlError| ClusterError::Sentinel(e.to_string()))?;
            return Ok(Link::Sentinel(Arc::new(sentinels)));
        }
        let Some(seeds) = url.strip_prefix(CLUSTER_SCHEME) else {
            return Ok(Link::Single(Box::new(client(config)?)));
        };
        if config.redis_ca.is_some() {
            return Err(plain_only(CLUSTER_SCHEME));
        }
        let seeds: Vec<String> = seeds
            .trim_end_matches('/')
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|seed| format!("redis://{seed}/"))
            .collect();
        if seeds.is_empty() {
            return Err(ClusterError::Redis(redis::RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                "redis-cluster:// names no seed node (redis-cluster://host:port,host:port)",
            ))));
        }
        // Each seed must parse as a URL now, not at the first reconnect.
        for seed in &seeds {
            redis::Client::open(seed.as_str())?;
        }
        Ok(Link::Cluster(seeds))
    }

    /// A command connection that reconnects (one server) or follows the cluster's topology.
    pub(super) async fn connect(&self, config: &ClusterConfig) -> Result<Conn, ClusterError> {
        match self {
            Link::Single(client) => {
                let manager_config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_response_timeout(Some(RESPONSE_TIMEOUT))
                    .set_number_of_retries(1);
                let conn = ConnectionManager::new_with_config((**client).clone(), manager_config)
                    .await
                    .map_err(|e| connect_error(e, config))?;
                Ok(Conn::Single(conn))
            }
            Link::Sentinel(sentinels) => {
                let primary_config = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_response_timeout(Some(RESPONSE_TIMEOUT));
                let primary = Primary::connect(Arc::clone(sentinels), primary_config)
                    .await
                    .map_err(ClusterError::Sentinel)?;
                Ok(Conn::Sentinel(primary))
            }
            Link::Cluster(seeds) => {
                let conn = cluster_builder(seeds)
                    .build()?
                    .get_async_connection()
                    .await?;
                Ok(Conn::Cluster(conn))
            }
        }
    }
}

/// The cluster client's settings shared by the command and the subscriber connections.
pub(super) fn cluster_builder(seeds: &[String]) -> ClusterClientBuilder {
    ClusterClient::builder(seeds.iter().map(String::as_str))
        .connection_timeout(CONNECT_TIMEOUT)
        .response_timeout(RESPONSE_TIMEOUT)
}

/// The client for `config`'s Redis (one server).
fn client(config: &ClusterConfig) -> Result<redis::Client, ClusterError> {
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
fn connect_error(err: redis::RedisError, config: &ClusterConfig) -> ClusterError {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> ClusterConfig {
        ClusterConfig {
            redis_url: url.into(),
            redis_ca: None,
            claim_node_id: true,
        }
    }

    #[test]
    fn a_cluster_url_names_its_seeds() {
        let Ok(Link::Cluster(seeds)) =
            Link::open(&config("redis-cluster://127.0.0.1:7000, 127.0.0.1:7001,/"))
        else {
            panic!("not a cluster link");
        };
        assert_eq!(
            seeds,
            ["redis://127.0.0.1:7000/", "redis://127.0.0.1:7001/"]
        );
        assert!(matches!(
            Link::open(&config("redis://127.0.0.1:6379/")),
            Ok(Link::Single(_))
        ));
    }

    #[test]
    fn a_sentinel_url_is_a_sentinel_link() {
        let Ok(Link::Sentinel(sentinels)) = Link::open(&config(
            "redis+sentinel://127.0.0.1:26379,127.0.0.1:26380/mymaster",
        )) else {
            panic!("not a sentinel link");
        };
        assert_eq!(sentinels.name(), "mymaster");
    }

    #[test]
    fn an_incomplete_url_or_tls_to_a_cluster_or_sentinels_is_refused_with_the_reason() {
        let refused = |url: &str, ca: bool| {
            let mut config = config(url);
            config.redis_ca = ca.then(|| "ca.pem".into());
            Link::open(&config).expect_err(url).to_string()
        };
        for (url, ca, reason) in [
            ("redis-cluster://", false, "names no seed node"),
            ("rediss-cluster://h:1", false, "not supported"),
            ("redis-cluster://h:1", true, "--redis-ca"),
            ("redis+sentinel://127.0.0.1:26379", false, "MASTER_NAME"),
            ("rediss+sentinel://h:1/m", false, "not supported"),
            ("redis+sentinel://h:1/m", true, "--redis-ca"),
        ] {
            let why = refused(url, ca);
            assert!(why.contains(reason), "{url}: {why}");
        }
    }
}
