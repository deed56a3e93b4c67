//! Redis Sentinel: `redis+sentinel://[user:pass@]host:port[,host:port…]/MASTER_NAME` names the
//! sentinels that watch one primary (with its replicas), not the primary itself, so the node
//! asks them where the primary is on every (re)connect, the command connection's
//! (`primary.rs`) and the subscriber's (`pubsub.rs`) alike.
//!
//! Why not the redis crate's `sentinel` feature: it resolves the primary too, but its
//! connections to the sentinels have no response timeout (one frozen sentinel stalls every
//! resolve behind it), and it offers no connection that re-resolves after a failover, which is
//! the part that matters here. Resolving is three commands; they are written here with a
//! timeout each.
//!
//! A resolve follows the Sentinel client protocol: ask the sentinels in turn (starting with the
//! one that answered last) `SENTINEL GET-MASTER-ADDR-BY-NAME`, then connect to that address and
//! check `ROLE` is `master`: during a failover, or when a killed primary comes back, an address
//! can name a replica for a moment, and writes there would fail with READONLY.
//!
//! The URL's credentials are the primary's (`AUTH` on the data nodes). The sentinels are asked
//! without credentials: sentinels with `requirepass` are not supported yet. Over TLS
//! (`rediss+sentinel://`) both the sentinels and the primary are reached over TLS with the same
//! roots (`redis_tls.rs`): a deployment that encrypts one but not the other would leak the
//! primary's address or its data, so there is no mixed form.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, RedisResult, Value};
use thiserror::Error;

use super::redis_tls::{self, RedisTls};

/// Each step of a resolve (a connect, a reply) waits at most this long: a frozen sentinel is
/// skipped for the next one instead of stalling the node.
const STEP_TIMEOUT: Duration = Duration::from_secs(1);
/// A whole resolve (sentinels in turn, then the primary) gives up after this long.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(4);
/// While the sentinels answer but still name a dead or demoted primary, a failover is under
/// way (it ends `down-after-milliseconds` plus an election later): asking again this often,
/// rather than on a backoff doubling to seconds, lets a node follow within a fraction of a
/// second of the promotion. Cheap: one command to a sentinel per node per period.
pub const FAILOVER_POLL: Duration = Duration::from_millis(200);

pub const SCHEME: &str = "redis+sentinel://";
pub const TLS_SCHEME: &str = "rediss+sentinel://";

/// Why a resolve found no primary. Each carries what the operator needs to see in the log.
#[derive(Debug, Error)]
pub enum ResolveError {
    #[error("no sentinel answered ({0})")]
    NoSentinel(String),
    #[error("no sentinel knows a primary named {0:?} (SENTINEL MONITOR it)")]
    UnknownName(String),
    #[error("the sentinels name {addr} as the primary of {name:?}, but it is unreachable: {why}")]
    Unreachable {
        addr: String,
        name: String,
        why: String,
    },
    #[error(
        "the sentinels name {addr} as the primary, but it reports role {role} (a failover in progress)"
    )]
    NotPrimary { addr: String, role: String },
    #[error("resolving the primary through the sentinels took over {0:?}")]
    TimedOut(Duration),
}

/// A `redis+sentinel://` URL that does not say what it must.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum UrlError {
    #[error(
        "redis+sentinel:// names no sentinel (redis+sentinel://host:port,host:port/MASTER_NAME)"
    )]
    NoSentinel,
    #[error(
        "redis+sentinel:// names no primary: end the URL with /MASTER_NAME, as in SENTINEL MONITOR"
    )]
    NoName,
    #[error("redis+sentinel:// sentinel {0:?} is not host:port")]
    BadSentinel(String),
}

/// The sentinels of one monitored primary, and the credentials for that primary.
#[derive(Debug)]
pub struct Sentinels {
    /// `host:port` of each sentinel.
    addrs: Vec<String>,
    name: String,
    /// `user:pass@` exactly as written in the URL (already percent-encoded), or empty.
    userinfo: String,
    /// The sentinel that answered last: asked first next time.
    preferred: AtomicUsize,
    /// The primary the sentinels named last (to any caller): the command connection checks it
    /// before each command, so it follows when the subscriber's periodic check sees a switch.
    named: Mutex<Option<String>>,
    /// Set for `rediss+sentinel://`: TLS to the sentinels and to the primary.
    tls: Option<RedisTls>,
}

impl ResolveError {
    /// The sentinels answered, but the primary they name is dead or not a primary (yet): a
    /// failover is probably under way, worth asking again soon ([`FAILOVER_POLL`]).
    pub fn in_failover(&self) -> bool {
        matches!(
            self,
            ResolveError::Unreachable { .. } | ResolveError::NotPrimary { .. }
        )
    }
}

/// A connected primary: its command connection and its address, as the sentinels named it.
pub struct Resolved {
    pub client: Client,
    pub addr: String,
}

impl std::str::FromStr for Sentinels {
    type Err = UrlError;

    fn from_str(url: &str) -> Result<Self, UrlError> {
        let rest = url
            .strip_prefix(SCHEME)
            .or_else(|| url.strip_prefix(TLS_SCHEME))
            .unwrap_or(url);
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (userinfo, hosts) = match authority.rsplit_once('@') {
            Some((user, hosts)) => (format!("{user}@"), hosts),
            None => (String::new(), authority),
        };
        let addrs: Vec<String> = hosts
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        if addrs.is_empty() {
            return Err(UrlError::NoSentinel);
        }
        for addr in &addrs {
            let port = addr.rsplit_once(':').map(|(_, port)| port.parse::<u16>());
            if !matches!(port, Some(Ok(_))) {
                return Err(UrlError::BadSentinel(addr.clone()));
            }
        }
        let name = path.trim_end_matches('/');
        if name.is_empty() || name.contains(['/', '?', '#']) {
            return Err(UrlError::NoName);
        }
        Ok(Sentinels {
            addrs,
            name: name.to_string(),
            userinfo,
            preferred: AtomicUsize::new(0),
            named: Mutex::new(None),
            tls: None,
        })
    }
}

impl Sentinels {
    /// These sentinels, reached (with their primary) over TLS when `tls` is set.
    pub fn with_tls(self, tls: Option<RedisTls>) -> Sentinels {
        Sentinels { tls, ..self }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether `addr` is still the primary as far as this node last heard from the sentinels.
    pub fn still_names(&self, addr: &str) -> bool {
        self.named
            .lock()
            .as_deref()
            .is_none_or(|named| named == addr)
    }

    /// The primary's address as the sentinels name it now (`host:port`), without connecting
    /// to it: the subscriber's periodic check that its connection is still on the primary.
    pub async fn primary_addr(&self) -> Result<String, ResolveError> {
        let count = self.addrs.len();
        let first = self.preferred.load(Ordering::Relaxed) % count;
        let mut last_error = String::new();
        let mut unknown = false;
        for i in (0..count).map(|k| (first + k) % count) {
            match self.ask(&self.addrs[i]).await {
                Ok(Some(addr)) => {
                    self.preferred.store(i, Ordering::Relaxed);
                    *self.named.lock() = Some(addr.clone());
                    return Ok(addr);
                }
                Ok(None) => unknown = true,
                Err(e) => last_error = format!("{}: {e}", self.addrs[i]),
            }
        }
        Err(if unknown {
            ResolveError::UnknownName(self.name.clone())
        } else {
            ResolveError::NoSentinel(last_error)
        })
    }

    /// Asks the sentinels for the primary, connects to it and checks it is one (within
    /// `RESOLVE_TIMEOUT` in all).
    pub async fn resolve(
        &self,
        config: &AsyncConnectionConfig,
    ) -> Result<(Resolved, MultiplexedConnection), ResolveError> {
        tokio::time::timeout(RESOLVE_TIMEOUT, self.resolve_unbounded(config))
            .await
            .unwrap_or(Err(ResolveError::TimedOut(RESOLVE_TIMEOUT)))
    }

    /// [`Sentinels::resolve`], asked again every [`FAILOVER_POLL`] while a failover seems
    /// under way, for up to `patience`: the subscriber's reconnect, which would otherwise wait
    /// out a backoff doubling to seconds.
    pub async fn resolve_through_failover(
        &self,
        config: &AsyncConnectionConfig,
        patience: Duration,
    ) -> Result<(Resolved, MultiplexedConnection), ResolveError> {
        let until = tokio::time::Instant::now() + patience;
        loop {
            match self.resolve(config).await {
                Err(e)
                    if e.in_failover() && tokio::time::Instant::now() + FAILOVER_POLL < until =>
                {
                    tokio::time::sleep(FAILOVER_POLL).await;
                }
                done => return done,
            }
        }
    }

    async fn resolve_unbounded(
        &self,
        config: &AsyncConnectionConfig,
    ) -> Result<(Resolved, MultiplexedConnection), ResolveError> {
        let addr = self.primary_addr().await?;
        let unreachable = |why: String| ResolveError::Unreachable {
            addr: addr.clone(),
            name: self.name.clone(),
            why,
        };
        let client = redis_tls::client_for(&format!("{}{addr}", self.userinfo), self.tls.as_ref())
            .map_err(|e| unreachable(e.to_string()))?;
        let mut conn = client
            .get_multiplexed_async_connection_with_config(config)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let role: Value = step(redis::cmd("ROLE").query_async(&mut conn))
            .await
            .map_err(unreachable)?;
        let role = first_string(&role).unwrap_or_else(|| "unknown".into());
        if role != "master" {
            return Err(ResolveError::NotPrimary { addr, role });
        }
        Ok((Resolved { client, addr }, conn))
    }

    /// One sentinel's answer: the primary's `host:port`, or `None` when it monitors no
    /// primary of that name.
    async fn ask(&self, sentinel: &str) -> Result<Option<String>, String> {
        let client =
            redis_tls::client_for(sentinel, self.tls.as_ref()).map_err(|e| e.to_string())?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(STEP_TIMEOUT))
            .set_response_timeout(Some(STEP_TIMEOUT));
        let mut conn = step(client.get_multiplexed_async_connection_with_config(&config)).await?;
        let reply: Option<(String, u16)> = step(
            redis::cmd("SENTINEL")
                .arg("GET-MASTER-ADDR-BY-NAME")
                .arg(&self.name)
                .query_async(&mut conn),
        )
        .await?;
        Ok(reply.map(|(host, port)| {
            if host.contains(':') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            }
        }))
    }
}

/// The first element of a `ROLE` reply (`master`, `slave`, `sentinel`).
fn first_string(reply: &Value) -> Option<String> {
    let Value::Array(items) = reply else {
        return None;
    };
    match items.first()? {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

async fn step<T>(command: impl Future<Output = RedisResult<T>>) -> Result<T, String> {
    match tokio::time::timeout(STEP_TIMEOUT, command).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sentinel_url_names_its_sentinels_the_primary_and_its_credentials() {
        let s: Sentinels = "redis+sentinel://u:p%40ss@127.0.0.1:26379, 10.0.0.2:26380/mymaster/"
            .parse()
            .expect("valid");
        assert_eq!(s.addrs, ["127.0.0.1:26379", "10.0.0.2:26380"]);
        assert_eq!(s.name(), "mymaster");
        assert_eq!(s.userinfo, "u:p%40ss@");
        let plain: Sentinels = "redis+sentinel://h:1/m".parse().expect("valid");
        assert_eq!(plain.userinfo, "");
    }

    #[test]
    fn a_sentinel_url_missing_a_part_is_refused_with_what_is_missing() {
        let parse = |url: &str| url.parse::<Sentinels>().map(|_| ()).expect_err(url);
        assert_eq!(parse("redis+sentinel:///m"), UrlError::NoSentinel);
        assert_eq!(parse("redis+sentinel://h:1"), UrlError::NoName);
        assert_eq!(parse("redis+sentinel://h:1/"), UrlError::NoName);
        assert_eq!(parse("redis+sentinel://h:1/a/b"), UrlError::NoName);
        assert_eq!(
            parse("redis+sentinel://h/m"),
            UrlError::BadSentinel("h".into())
        );
        assert_eq!(
            parse("redis+sentinel://h:x/m"),
            UrlError::BadSentinel("h:x".into())
        );
    }

    #[test]
    fn a_role_reply_is_read_from_its_first_element() {
        let master = Value::Array(vec![Value::BulkString(b"master".to_vec()), Value::Int(0)]);
        assert_eq!(first_string(&master).as_deref(), Some("master"));
        assert_eq!(first_string(&Value::Nil), None);
    }
}
