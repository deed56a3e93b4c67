//! Presence in Redis, shared by every node: who is online anywhere in the cluster.
//!
//! Keys (all updated by Lua scripts, so each step is atomic and exactly one node sees a user's
//! first join or last leave):
//! - `sbx:p:<user>`: ZSET of that user's sessions, member `<node>:<incarnation>:<session>`,
//!   score = when the entry lapses (ms). The key itself expires after 2 × TTL, so a cluster
//!   that lost every node leaves nothing behind.
//! - `sbx:p:due`: ZSET of users, score = the latest lapse time among their sessions: the
//!   sweeper's index, so a sweep reads only users that may have gone offline.
//! - `sbx:p:seen`: HASH user → last-seen ms (for `lastSeen` in presence answers).
//!
//! The sweep is one script that takes due users, drops their lapsed sessions and returns those
//! left with none. It is atomic, so any number of nodes may sweep at once and each offline
//! event is reported by exactly one of them: no lock is needed, and the sweep goes on as long
//! as any node lives — which is what makes a crashed node's users go offline.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use parking_lot::Mutex;
use redis::aio::ConnectionManager;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use super::channel::PREFIX;
use super::health::Health;
use crate::chat::presence::{Announce, Change, PresenceBackend};
use crate::clock::now_ms;

/// Touches and leaves waiting for Redis. Full: a touch is dropped (the next one refreshes the
/// entry) and so is a leave (its session then lapses with the TTL, announced by the sweep).
const REPORTS: usize = 8192;
/// Scripts in flight at once: a burst of reconnecting sessions is absorbed in a few round trips.
const IN_FLIGHT: usize = 64;
/// Longest a status read may hold up the chat operation that asked: the answer then counts as
/// unknown (offline), rather than stalling deliveries behind it during a Redis hang.
const STATUS_TIMEOUT: Duration = Duration::from_millis(250);

/// A session's report: (user, session, touch (`true`) or leave).
type Report = (String, u64, bool);

/// Users one sweep may take offline: bounds one script's run time inside Redis.
const SWEEP_LIMIT: usize = 1000;

// Both scripts: KEYS = user key, due index, last-seen hash; ARGV = member, now, user, lapse
// time, key TTL. Each returns 1 when the user's status changed (first join / last leave).
const TOUCH: &str = r"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
local before = redis.call('ZCARD', KEYS[1])
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('ZADD', KEYS[2], 'GT', ARGV[4], ARGV[3])
redis.call('HSET', KEYS[3], ARGV[3], ARGV[2])
if before == 0 then return 1 end
return 0";

const LEAVE: &str = r"
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
redis.call('HSET', KEYS[3], ARGV[3], ARGV[2])
if redis.call('ZCARD', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[3])
  return 1
end
return 0";

// Touches keys it builds from ARGV[3]: fine on one Redis; Redis Cluster would need hash tags.
const SWEEP: &str = r"
local users = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
local gone = {}
for _, user in ipairs(users) do
  local key = ARGV[3] .. user
  redis.call('ZREMRANGEBYSCORE', key, '-inf', ARGV[1])
  local left = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if #left == 0 then
    redis.call('ZREM', KEYS[1], user)
    redis.call('DEL', key)
    table.insert(gone, user)
    table.insert(gone, redis.call('HGET', KEYS[2], user) or '0')
  else
    redis.call('ZADD', KEYS[1], left[2], user)
  end
end
return gone";

#[derive(Debug)]
pub struct SharedPresence {
    conn: ConnectionManager,
    health: Arc<Health>,
    reports_tx: mpsc::Sender<Report>,
    reports_rx: Mutex<Option<mpsc::Receiver<Report>>>,
    /// Distinguishes this process's sessions from an earlier run under the same node id.
    member_prefix: String,
    ttl: Duration,
    touch: redis::Script,
    leave: redis::Script,
    sweep: redis::Script,
}

fn user_key(user: &str) -> String {
    format!("{PREFIX}p:{user}")
}

fn due_key() -> String {
    format!("{PREFIX}p:due")
}

fn seen_key() -> String {
    format!("{PREFIX}p:seen")
}

impl SharedPresence {
    pub fn new(
        conn: ConnectionManager,
        health: Arc<Health>,
        node_id: u16,
        incarnation: &str,
        ttl: Duration,
    ) -> Self {
        let (reports_tx, reports_rx) = mpsc::channel(REPORTS);
        Self {
            conn,
            health,
            reports_tx,
            reports_rx: Mutex::new(Some(reports_rx)),
            member_prefix: format!("{node_id}:{incarnation}:"),
            ttl,
            touch: redis::Script::new(TOUCH),
            leave: redis::Script::new(LEAVE),
            sweep: redis::Script::new(SWEEP),
        }
    }

    /// Runs reported touches and leaves until `done`; a change (first join, last leave) goes
    /// to `announce`.
    fn run_reports(
        self: Arc<Self>,
        announce: Announce,
        tasks: &TaskTracker,
        done: CancellationToken,
    ) {
        let Some(mut rx) = self.reports_rx.lock().take() else {
            return;
        };
        let this = self;
        tasks.spawn(async move {
            let mut running = FuturesUnordered::new();
            loop {
                tokio::select! {
                    () = done.cancelled() => return,
                    report = rx.recv(), if running.len() < IN_FLIGHT => {
                        let Some((user, session, touch)) = report else { return };
                        let this = Arc::clone(&this);
                        running.push(async move {
                            let result = if touch {
                                this.touch(&user, session).await
                            } else {
                                this.leave(&user, session).await
                            };
                            (user, result)
                        });
                    }
                    Some((user, result)) = running.next() => match result {
                        Ok(Some(change)) => announce(change),
                        Ok(None) => {}
                        Err(e) => warn!(%user, error = %e, "presence update in redis failed"),
                    },
                }
            }
        });
    }

    /// A session is alive; `Some` when its user just came online cluster-wide.
    pub async fn touch(&self, user: &str, session: u64) -> redis::RedisResult<Option<Change>> {
        self.run_script(&self.touch, user, session, true).await
    }

    /// A session ended cleanly; `Some` when it was its user's last anywhere.
    pub async fn leave(&self, user: &str, session: u64) -> redis::RedisResult<Option<Change>> {
        self.run_script(&self.leave, user, session, false).await
    }

    async fn run_script(
        &self,
        script: &redis::Script,
        user: &str,
        session: u64,
        online: bool,
    ) -> redis::RedisResult<Option<Change>> {
        let now = now_ms();
        let ttl = self.ttl.as_millis() as u64;
        // The label lookup is per round trip to Redis, which costs far more.
        let name = if online { "touch" } else { "leave" };
        let _timer = crate::metrics::get()
            .cluster
            .presence_script(name)
            .start_timer();
        let changed: i64 = script
            .key(user_key(user))
            .key(due_key())
            .key(seen_key())
            .arg(format!("{}{session}", self.member_prefix))
            .arg(now)
            .arg(user)
            .arg(now + ttl)
            .arg(2 * ttl)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok((changed == 1).then(|| Change {
            user: user.to_string(),
            online,
            last_seen_ms: now,
        }))
    }

    /// Users whose every session lapsed (their nodes died or went silent), now offline.
    pub async fn sweep_lapsed(&self) -> redis::RedisResult<Vec<Change>> {
        let _timer = crate::metrics::get()
            .cluster
            .presence_script("sweep")
            .start_timer();
        let flat: Vec<String> = self
            .sweep
            .key(due_key())
            .key(seen_key())
            .arg(now_ms())
            .arg(SWEEP_LIMIT)
            .arg(format!("{PREFIX}p:"))
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(flat
            .chunks_exact(2)
            .map(|pair| Change {
                user: pair[0].clone(),
                online: false,
                last_seen_ms: pair[1].parse().unwrap_or(0),
            })
            .collect())
    }

    /// (online, last seen ms) per user, in one round trip; `None` when Redis cannot say now
    /// (unreachable, failing, or slower than [`STATUS_TIMEOUT`]).
    pub async fn lookup(&self, users: &[String]) -> Option<Vec<(bool, Option<u64>)>> {
        if users.is_empty() {
            return Some(Vec::new());
        }
        if !self.health.is_connected() {
            return None;
        }
        match tokio::time::timeout(STATUS_TIMEOUT, self.read_statuses(users)).await {
            Ok(Ok(statuses)) => Some(statuses),
            Ok(Err(e)) => {
                warn!(error = %e, "presence lookup in redis failed");
                None
            }
            Err(_) => {
                warn!("presence lookup in redis timed out");
                None
            }
        }
    }

    async fn read_statuses(
        &self,
        users: &[String],
    ) -> redis::RedisResult<Vec<(bool, Option<u64>)>> {
        let now = now_ms();
        let mut pipe = redis::pipe();
        for user in users {
            pipe.cmd("ZCOUNT").arg(user_key(user)).arg(now).arg("+inf");
            pipe.cmd("HGET").arg(seen_key()).arg(user);
        }
        let replies: Vec<Option<u64>> = pipe.query_async(&mut self.conn.clone()).await?;
        Ok(replies
            .chunks_exact(2)
            .map(|pair| (pair[0].unwrap_or(0) > 0, pair[1]))
            .collect())
    }
}

impl PresenceBackend for SharedPresence {
    fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Never waits: the script runs on the presence worker, off the chat sequencer, so a slow
    /// Redis delays presence only; the worker announces what changed.
    fn report(&self, user: &str, session: u64, touch: bool) -> Option<Change> {
        if self
            .reports_tx
            .try_send((user.to_string(), session, touch))
            .is_err()
        {
            debug!(user, "presence report dropped: queue full");
        }
        None
    }

    fn start(self: Arc<Self>, announce: Announce, tasks: &TaskTracker, done: CancellationToken) {
        self.run_reports(announce, tasks, done);
    }

    fn sweep(&self) -> BoxFuture<'_, Vec<Change>> {
        async move {
            self.sweep_lapsed().await.unwrap_or_else(|e| {
                warn!(error = %e, "presence sweep in redis failed");
                Vec::new()
            })
        }
        .boxed()
    }

    fn statuses<'a>(&'a self, users: &'a [String]) -> BoxFuture<'a, Vec<(bool, Option<u64>)>> {
        async move {
            self.lookup(users)
                .await
                .unwrap_or_else(|| vec![(false, None); users.len()])
        }
        .boxed()
    }

    fn still_holds<'a>(&'a self, change: &'a Change) -> BoxFuture<'a, bool> {
        async move {
            match self.lookup(std::slice::from_ref(&change.user)).await {
                Some(now) => now
                    .first()
                    .is_none_or(|(online, _)| *online == change.online),
                None => true,
            }
        }
        .boxed()
    }
}
