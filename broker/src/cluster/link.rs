//! Where a node's Redis is, and how its connections are opened: one server, plain (`redis://`,
//! `unix://`) or TLS (`rediss://`); one primary with replicas behind Redis Sentinel,
//! `redis+sentinel://[user:pass@]host:port,…/MASTER_NAME` (the sentinels' addresses:
//! `sentinel.rs`), or `rediss+sentinel://…` with TLS to the sentinels and to the primary; or a
//! Redis Cluster named by its seed nodes, `redis-cluster://host:port,host:port,…`, or
//! `rediss-cluster://…` with TLS to every shard. Every TLS form checks the server's certificate
//! against `--redis-ca` or the system's roots, with no way to skip the check (`redis_tls.rs`).

use std::sync::Arc;
use std::time::Duration;

use redis::AsyncConnectionConfig;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterClientBuilder};

use super::error::ClusterError;
use super::primary::Primary;
use super::redis_link::Conn;
use super::redis_tls::RedisTls;
use super::sentinel::{self, Sentinels};
use crate::config::ClusterConfig;

/// Per-command limits on the shared connection: a call during an outage fails fast (and is
/// counted) instead of stalling the publisher or a chat operation.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

const CLUSTER_SCHEME: &str = "redis-cluster://";
const CLUSTER_TLS_SCHEME: &str = "rediss-cluster://";

/// The node's Redis: one server, the sentinels of one primary, or a cluster's seed nodes.
#[derive(Debug, Clone)]
pub enum Link {
    Single(Box<redis::Client>),
    Sentinel(Arc<Sentinels>),
    Cluster(Seeds),
}

/// A Redis Cluster's seed nodes (`redis://host:port/` each, or `rediss://` over TLS) and the
/// TLS roots the whole cluster is reached with.
#[derive(Debug, Clone)]
pub struct Seeds {
    urls: Vec<String>,
    tls: Option<RedisTls>,
}

impl Link {
    pub(super) fn open(config: &ClusterConfig) -> Result<Link, ClusterError> {
        let url = config.redis_url.as_str();
        let sentinel_tls = url.starts_with(sentinel::TLS_SCHEME);
        if sentinel_tls || url.starts_with(sentinel::SCHEME) {
            let tls = RedisTls::for_link(config, sentinel_tls)?;
            let sentinels = url
                .parse::<Sentinels>()
                .map_err(|e: sentinel::UrlError| ClusterError::Sentinel(e.to_string()))?
                .with_tls(tls);
            return Ok(Link::Sentinel(Arc::new(sentinels)));
        }
        let (seeds, scheme) = if let Some(seeds) = url.strip_prefix(CLUSTER_TLS_SCHEME) {
            (seeds, "rediss")
        } else if let Some(seeds) = url.strip_prefix(CLUSTER_SCHEME) {
            (seeds, "redis")
        } else {
            return Ok(Link::Single(Box::new(client(config)?)));
        };
        let tls = RedisTls::for_link(config, scheme == "rediss")?;
        let urls: Vec<String> = seeds
            .trim_end_matches('/')
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|seed| format!("{scheme}://{seed}/"))
            .collect();
        if urls.is_empty() {
            return Err(ClusterError::Redis(redis::RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                "redis-cluster:// names no seed node (redis-cluster://host:port,host:port)",
            ))));
        }
        // Each seed must parse as a URL now, not at the first reconnect.
        for seed in &urls {
            redis::Client::open(seed.as_str())?;
        }
        Ok(Link::Cluster(Seeds { urls, tls }))
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
                    .await
                    .map_err(|e| connect_error(e, config))?;
                Ok(Conn::Cluster(conn))
            }
        }
    }
}

/// The cluster client's settings shared by the command and the subscriber connections: the
/// seeds' scheme makes every shard connection TLS or plain, and these roots check each.
pub(super) fn cluster_builder(seeds: &Seeds) -> ClusterClientBuilder {
    let builder = ClusterClient::builder(seeds.urls.iter().map(String::as_str))
        .connection_timeout(CONNECT_TIMEOUT)
        .response_timeout(RESPONSE_TIMEOUT);
    match seeds.tls.as_ref().and_then(RedisTls::certificates) {
        Some(certs) => builder.certs(certs),
        None => builder,
    }
}

/// The client for `config`'s Redis (one server).
fn client(config: &ClusterConfig) -> Result<redis::Client, ClusterError> {
    let url = config.redis_url.as_str();
    let tls = url.starts_with("rediss://") || url.starts_with("valkeys://");
    match RedisTls::for_link(config, tls)? {
        Some(tls) => Ok(tls.client(url)?),
        None => Ok(redis::Client::open(url)?),
    }
}

/// The first connection's failure. A plain URL whose server hung up at once is most often a
/// TLS-only Redis (it drops a connection whose first bytes are not a TLS handshake): say so.
fn connect_error(err: redis::RedisError, config: &ClusterConfig) -> ClusterError {
    let plain =
        config.redis_url.starts_with("redis://") || config.redis_url.starts_with(CLUSTER_SCHEME);
    let hung_up = err.is_connection_dropped() && !err.is_connection_refusal();
    if plain && hung_up {
        ClusterError::HungUp(err)
    } else {
        ClusterError::Redis(err)
    }
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

    /// The seed URLs `url` names, and whether the cluster is reached over TLS.
    fn seeds(url: &str) -> (Vec<String>, bool) {
        let Ok(Link::Cluster(Seeds { urls, tls })) = Link::open(&config(url)) else {
            panic!("{url}: not a cluster link");
        };
        (urls, tls.is_some())
    }

    #[test]
    fn a_cluster_url_names_its_seeds() {
        let (plain, tls) = seeds("redis-cluster://127.0.0.1:7000, 127.0.0.1:7001,/");
        assert_eq!(
            plain,
            ["redis://127.0.0.1:7000/", "redis://127.0.0.1:7001/"]
        );
        assert!(!tls, "redis-cluster:// is plain");
        let (secure, tls) = seeds("rediss-cluster://127.0.0.1:7000,localhost:7001");
        assert_eq!(
            secure,
            ["rediss://127.0.0.1:7000/", "rediss://localhost:7001/"]
        );
        assert!(tls, "rediss-cluster:// is TLS");
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
    fn an_incomplete_url_or_a_ca_on_a_plain_url_is_refused_with_the_reason() {
        let refused = |url: &str, ca: bool| {
            let mut config = config(url);
            config.redis_ca = ca.then(|| "ca.pem".into());
            Link::open(&config).expect_err(url).to_string()
        };
        for (url, ca, reason) in [
            ("redis-cluster://", false, "names no seed node"),
            ("rediss-cluster://h:1#insecure", false, "not supported"),
            ("rediss-cluster://h:1", true, "--redis-ca ca.pem"),
            ("redis-cluster://h:1", true, "--redis-ca"),
            ("redis+sentinel://127.0.0.1:26379", false, "MASTER_NAME"),
            ("rediss+sentinel://h:1/m#insecure", false, "not supported"),
            ("rediss+sentinel://h:1", false, "MASTER_NAME"),
            ("redis+sentinel://h:1/m", true, "--redis-ca"),
        ] {
            let why = refused(url, ca);
            assert!(why.contains(reason), "{url}: {why}");
        }
    }
}
