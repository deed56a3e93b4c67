//! The node id lease: each node of a cluster needs a distinct id (it is part of every
//! Snowflake message id). A configured id is taken as given; otherwise the node claims a free
//! one in Redis with `SET sbx:node:<id> <token> NX PX <lease>`, renews it while it runs, and
//! deletes it on a clean shutdown. A node that dies lets its lease lapse, so its id is free
//! again after [`LEASE`]: the process that issued ids under it is gone, and a crashed fleet
//! restarts without waiting.

use std::time::Duration;

use super::redis_link::Conn;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::backoff::Backoff;
use super::error::ClusterError;
use crate::id::MAX_NODE_ID;

/// How long a lease lives without renewal. Also how long a dead node's unacknowledged
/// `/queue` messages wait before another node takes them over (`stream.rs`), so short; a
/// Redis outage longer than this only costs a warning, as the renewal takes a free id back.
const LEASE: Duration = Duration::from_secs(6);
/// Renewal period: three chances before the lease lapses.
const RENEW: Duration = Duration::from_secs(2);

/// Renews only a lease we still own (another node may have claimed a lapsed one).
const RENEW_SCRIPT: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0";
const RELEASE_SCRIPT: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0";

fn key(id: u16) -> String {
    format!("{}node:{id}", super::channel::PREFIX)
}

/// A held node id.
#[derive(Debug, Clone)]
pub struct Lease {
    pub node_id: u16,
    token: String,
}

impl Lease {
    /// Takes `configured` (overriding a stale lease, with a warning), or claims a free id.
    pub async fn acquire(
        conn: &mut Conn,
        configured: Option<u16>,
        token: String,
    ) -> Result<Lease, ClusterError> {
        let lease_ms = LEASE.as_millis() as u64;
        if let Some(node_id) = configured {
            let previous: Option<String> = redis::cmd("SET")
                .arg(key(node_id))
                .arg(&token)
                .arg("PX")
                .arg(lease_ms)
                .arg("GET")
                .query_async(conn)
                .await?;
            if previous.is_some() {
                warn!(
                    node_id,
                    "node id was leased by another process (a restart of this node, or a \
                     misconfigured twin): message ids are unique only if ids are"
                );
            }
            return Ok(Lease { node_id, token });
        }
        // Start at a random id so nodes starting together rarely race for the same one.
        let ids = u32::from(MAX_NODE_ID) + 1;
        let start = rand::random::<u32>() % ids;
        for step in 0..ids {
            let node_id = ((start + step) % ids) as u16;
            let taken: Option<String> = redis::cmd("SET")
                .arg(key(node_id))
                .arg(&token)
                .arg("NX")
                .arg("PX")
                .arg(lease_ms)
                .query_async(conn)
                .await?;
            if taken.is_some() {
                info!(node_id, "claimed node id in Redis");
                return Ok(Lease { node_id, token });
            }
        }
        Err(ClusterError::NoFreeNodeId(MAX_NODE_ID + 1))
    }

    /// Renews the lease until `done`, then releases it.
    pub async fn keep(self, mut conn: Conn, done: CancellationToken) {
        let renew = redis::Script::new(RENEW_SCRIPT);
        let mut tick = tokio::time::interval(RENEW);
        let mut backoff = Backoff::new();
        loop {
            tokio::select! {
                () = done.cancelled() => break,
                _ = tick.tick() => {}
            }
            let renewed: Result<i64, _> = renew
                .key(key(self.node_id))
                .arg(&self.token)
                .arg(LEASE.as_millis() as u64)
                .invoke_async(&mut conn)
                .await;
            match renewed {
                Ok(1) => backoff.reset(),
                Ok(_) => {
                    // Lost while Redis was away or restarted empty: take it back if free.
                    let retaken: Result<Option<String>, _> = redis::cmd("SET")
                        .arg(key(self.node_id))
                        .arg(&self.token)
                        .arg("NX")
                        .arg("PX")
                        .arg(LEASE.as_millis() as u64)
                        .query_async(&mut conn)
                        .await;
                    if !matches!(retaken, Ok(Some(_))) {
                        error!(
                            node_id = self.node_id,
                            "node id lease is held by another node: message ids may collide"
                        );
                    }
                }
                Err(e) => {
                    warn!(node_id = self.node_id, error = %e, "node id lease renewal failed");
                    tokio::time::sleep(backoff.next_delay()).await;
                }
            }
        }
        // Bounded: a cluster client retries a failing shard for longer than shutdown waits.
        let release = redis::Script::new(RELEASE_SCRIPT);
        let mut invocation = release.key(key(self.node_id));
        invocation.arg(&self.token);
        match tokio::time::timeout(RENEW, invocation.invoke_async::<i64>(&mut conn)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                warn!(error = %e, "could not release the node id lease; it lapses by itself")
            }
            Err(_) => warn!("could not release the node id lease in time; it lapses by itself"),
        }
    }
}
