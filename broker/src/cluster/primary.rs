//! The command connection on Redis Sentinel: one multiplexed connection to the primary the
//! sentinels name (`sentinel.rs`), replaced when it fails.
//!
//! The redis crate's `ConnectionManager` reconnects to the address it was given, which after a
//! failover is a dead process or a replica. So this connection is dropped and the primary
//! re-resolved when a command fails in a way that says the primary is gone or demoted:
//! - an I/O error, a dropped connection or a timeout (the process died, froze or is cut off);
//! - a `READONLY` reply (the address now serves a replica: the old primary came back and the
//!   sentinels turned it into a replica of the new one).
//!
//! It is also dropped, before a command, when the sentinels were last heard naming another
//! primary (`Sentinels::still_names`; the subscriber asks them every 5 s): a primary demoted
//! while reachable fails nothing, but writes there reach no subscriber of the new one.
//!
//! The failing command is not retried here: it fails as it would on one server, and its caller
//! already copes (the publisher counts and drops, presence and leases retry on their period,
//! a chat operation answers an ERROR). The next command reconnects; while the sentinels still
//! name the dead primary (a failover under way) it waits up to 1 s for the new one, asking
//! every 200 ms, so traffic resumes within a fraction of a second of the promotion. Reconnects are one at a
//! time (a tokio mutex) and spaced by the jittered backoff of `backoff.rs`, so during an outage
//! commands fail fast between attempts instead of each knocking on the sentinels; each state
//! change is logged once (lost, still down at debug level, restored), and every re-established
//! connection counts in `stompbox_cluster_primary_reconnects_total`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{
    AsyncConnectionConfig, Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, RedisResult, Value,
};
use tracing::{debug, info, warn};

use super::backoff::Backoff;
use super::sentinel::{FAILOVER_POLL, Sentinels};

/// The node's command connection to the primary; cheap to clone (shared).
#[derive(Clone)]
pub struct Primary {
    shared: Arc<Shared>,
}

struct Shared {
    sentinels: Arc<Sentinels>,
    config: AsyncConnectionConfig,
    current: Mutex<Option<Current>>,
    /// Held while reconnecting, so one task reconnects and the others wait for its outcome.
    retry: tokio::sync::Mutex<Retry>,
}

#[derive(Clone)]
struct Current {
    conn: MultiplexedConnection,
    addr: String,
    /// Which connection this is: a failure on an older one must not drop a newer one.
    generation: u64,
}

struct Retry {
    backoff: Backoff,
    /// No reconnect before this instant (the backoff after a failed attempt).
    not_before: Option<Instant>,
    generation: u64,
    /// The current outage was logged (once per outage).
    outage_logged: bool,
    /// The last attempt found the sentinels naming a dead or demoted primary.
    in_failover: bool,
}

/// How long a command waits for a failover under way to finish (asking every
/// `FAILOVER_POLL`) before it fails: short, as it stalls the caller, but long enough that the
/// publisher, which backs off after a failed batch, is not asleep when the new primary is up.
const FAILOVER_WAIT: Duration = Duration::from_secs(1);

impl Primary {
    /// Resolves the primary and connects; fails (at startup) when the sentinels name none.
    pub async fn connect(
        sentinels: Arc<Sentinels>,
        config: AsyncConnectionConfig,
    ) -> Result<Primary, String> {
        let (resolved, conn) = sentinels
            .resolve(&config)
            .await
            .map_err(|e| e.to_string())?;
        info!(primary = %resolved.addr, name = sentinels.name(), "redis primary resolved through the sentinels");
        Ok(Primary {
            shared: Arc::new(Shared {
                sentinels,
                config,
                current: Mutex::new(Some(Current {
                    conn,
                    addr: resolved.addr,
                    generation: 0,
                })),
                retry: tokio::sync::Mutex::new(Retry {
                    backoff: Backoff::new(),
                    not_before: None,
                    generation: 0,
                    outage_logged: false,
                    in_failover: false,
                }),
            }),
        })
    }

    /// The current connection, reconnecting (through the sentinels) when there is none, and
    /// waiting up to `FAILOVER_WAIT` for a failover under way.
    async fn connection(&self) -> RedisResult<Current> {
        let until = Instant::now() + FAILOVER_WAIT;
        loop {
            match self.try_connection().await {
                Ok(current) => return Ok(current),
                Err((_, true)) if Instant::now() + FAILOVER_POLL < until => {
                    tokio::time::sleep(FAILOVER_POLL).await;
                }
                Err((e, _)) => return Err(e),
            }
        }
    }

    /// One attempt: the connection, or why not and whether a failover seems under way.
    async fn try_connection(&self) -> Result<Current, (RedisError, bool)> {
        {
            let mut slot = self.shared.current.lock();
            match slot.as_ref() {
                Some(current) if self.shared.sentinels.still_names(&current.addr) => {
                    return Ok(current.clone());
                }
                // Demoted while reachable (a manual failover, a healed partition): nothing
                // failed on this connection, but its writes would reach no subscriber.
                Some(current) => {
                    warn!(primary = %current.addr, "the sentinels name another redis primary now; reconnecting");
                    *slot = None;
                }
                None => {}
            }
        }
        let mut retry = self.shared.retry.lock().await;
        if let Some(current) = self.shared.current.lock().clone() {
            return Ok(current);
        }
        if retry.not_before.is_some_and(|t| Instant::now() < t) {
            return Err((
                down("no redis primary: waiting to ask the sentinels again"),
                retry.in_failover,
            ));
        }
        match self.shared.sentinels.resolve(&self.shared.config).await {
            Ok((resolved, conn)) => {
                retry.generation += 1;
                retry.backoff.reset();
                retry.not_before = None;
                retry.outage_logged = false;
                retry.in_failover = false;
                let current = Current {
                    conn,
                    addr: resolved.addr,
                    generation: retry.generation,
                };
                info!(primary = %current.addr, "redis primary reconnected through the sentinels");
                crate::metrics::get().cluster.primary_reconnects.inc();
                *self.shared.current.lock() = Some(current.clone());
                Ok(current)
            }
            Err(why) => {
                // Commands fail fast until then; during a failover, not for long.
                retry.in_failover = why.in_failover();
                let wait = if retry.in_failover {
                    FAILOVER_POLL
                } else {
                    retry.backoff.next_delay()
                };
                retry.not_before = Some(Instant::now() + wait);
                if retry.outage_logged {
                    debug!(error = %why, "redis primary still not resolved");
                } else {
                    retry.outage_logged = true;
                    warn!(error = %why, "redis primary not resolved through the sentinels; retrying with backoff");
                }
                Err((down(&why.to_string()), retry.in_failover))
            }
        }
    }

    /// After a failed command: drops the connection it ran on if the failure says the primary
    /// is gone or demoted (and nobody replaced that connection already).
    fn failed(&self, used: &Current, err: &RedisError) {
        if !primary_lost(err) {
            return;
        }
        let mut current = self.shared.current.lock();
        if current
            .as_ref()
            .is_some_and(|c| c.generation == used.generation)
        {
            *current = None;
            warn!(primary = %used.addr, error = %err, "redis primary lost; re-resolving through the sentinels at the next command");
        }
    }
}

/// What `redis_link::Conn` forwards its `ConnectionLike` calls to.
impl Primary {
    pub fn command<'a>(&'a self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(self.on_primary(move |mut conn| async move { conn.req_packed_command(cmd).await }))
    }

    pub fn pipeline<'a>(
        &'a self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(self.on_primary(move |mut conn| async move {
            conn.req_packed_commands(pipeline, offset, count).await
        }))
    }

    /// Runs `send` on the current connection, and drops that connection if the failure says
    /// the primary is gone.
    async fn on_primary<T, F>(
        &self,
        send: impl FnOnce(MultiplexedConnection) -> F,
    ) -> RedisResult<T>
    where
        F: Future<Output = RedisResult<T>>,
    {
        let used = self.connection().await?;
        let reply = send(used.conn.clone()).await;
        if let Err(e) = &reply {
            self.failed(&used, e);
        }
        reply
    }
}

/// The failures after which this connection is not worth keeping.
fn primary_lost(err: &RedisError) -> bool {
    err.is_io_error()
        || err.is_connection_dropped()
        || err.is_timeout()
        || err.kind() == ErrorKind::Server(redis::ServerErrorKind::ReadOnly)
}

fn down(why: &str) -> RedisError {
    RedisError::from((ErrorKind::Io, "redis primary unavailable", why.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_readonly_reply_or_a_dead_socket_drops_the_connection_other_errors_do_not() {
        // As the server sends it, parsed as the connection parses it.
        let readonly =
            redis::parse_redis_value(b"-READONLY You can't write against a read only replica.\r\n")
                .and_then(Value::extract_error)
                .expect_err("an error reply");
        assert!(primary_lost(&readonly), "{readonly:?}");
        let io = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert!(primary_lost(&io));
        let wrong_type = RedisError::from((ErrorKind::UnexpectedReturnType, "x"));
        assert!(!primary_lost(&wrong_type));
    }
}
