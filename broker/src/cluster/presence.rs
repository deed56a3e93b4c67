//! Presence in Redis, shared by every node: who is online anywhere in the cluster.
//!
//! Keys (all updated by Lua scripts, so each step is atomic and exactly one node sees a user's
//! first join or last leave):
//! - `sbx:p:u:<user>`: ZSET of that user's sessions (`u:` so that users named `due` or `seen`
//!   are not the index keys below), member `<node>:<incarnation>:<session>`,
//!   score = when the entry lapses (ms). The key itself expires after 2 × TTL, so a cluster
//!   that lost every node leaves nothing behind.
//! - `sbx:p:due`: ZSET of users, score = the latest lapse time among their sessions: the
//!   sweeper's index, so a sweep reads only users that may have gone offline.
//! - `sbx:p:seen`: HASH user → last-seen ms (for `lastSeen` in presence answers).
//!
//! On a Redis Cluster each script must touch keys of one slot, so the three keys are kept per
//! bucket, a hash tag: `sbx:p:{b<k>}:u:<user>`, `sbx:p:{b<k>}:due`, `sbx:p:{b<k>}:seen`, where
//! `k` = FNV-1a(user) mod the bucket count (`Conn::presence_buckets`, 64 on a cluster: presence
//! is the largest Redis load at scale, docs/capacity.md, and can spread over at most that many
//! shards). A sweep then runs once per bucket. On one server there
//! is one bucket and the keys keep their plain names above.
//!
//! The sweep is one script that takes due users, drops their lapsed sessions and returns those
//! left with none. It is atomic, so any number of nodes may sweep at once and each offline
//! event is reported by exactly one of them: no lock is needed, and the sweep goes on as long
//! as any node lives — which is what makes a crashed node's users go offline.

use std::sync::Arc;
use std::time::Duration;

use super::redis_link::{Conn, Keyed, fnv1a};
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use parking_lot::Mutex;
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

// Touches keys it builds from ARGV[3]: on a cluster that prefix holds the bucket's hash tag,
// so they share the slot of KEYS[1] and KEYS[2].
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
    conn: Conn,
    health: Arc<Health>,
    reports_tx: mpsc::Sender<Report>,
    reports_rx: Mutex<Option<mpsc::Receiver<Report>>>,
    /// Distinguishes this process's sessions from an earlier run under the same node id.
    member_prefix: String,
    ttl: Duration,
    touch: redis::Script,
    leave: redis::Script,
    sweep: redis::Script,
    buckets: u32,
}

/// Between a bucket's prefix and a user name in the user's key.
const USERS: &str = "u:";

/// The key prefix of one presence bucket: `sbx:p:` alone with one bucket, `sbx:p:{b<k>}:`
/// (a hash tag: one slot per bucket) with several.
fn bucket_prefix(bucket: Option<u32>) -> String {
    match bucket {
        None => format!("{PREFIX}p:"),
        Some(k) => format!("{PREFIX}p:{{b{k}}}:"),
    }
}

impl SharedPresence {
    /// The bucket holding `user`'s keys (`None`: the one unnamed bucket).
    fn bucket_of(&self, user: &str) -> Option<u32> {
        (self.buckets > 1).then(|| (fnv1a(user.as_bytes()) % u64::from(self.buckets)) as u32)
    }

    fn every_bucket(&self) -> Vec<Option<u32>> {
        if self.buckets > 1 {
            (0..self.buckets).map(Some).collect()
        } else {
            vec![None]
        }
    }

    fn user_key(&self, user: &str) -> String {
        format!("{}{USERS}{user}", bucket_prefix(self.bucket_of(user)))
    }

    fn due_key(&self, user: &str) -> String {
        format!("{}due", bucket_prefix(self.bucket_of(user)))
    }

    fn seen_key(&self, user: &str) -> String {
        format!("{}seen", bucket_prefix(self.bucket_of(user)))
    }
}

impl SharedPresence {
    pub fn new(
        conn: Conn,
        health: Arc<Health>,
        node_id: u16,
        incarnation: &str,
        ttl: Duration,
    ) -> Self {
        let (reports_tx, reports_rx) = mpsc::channel(REPORTS);
        let buckets = conn.presence_buckets();
        Self {
            buckets,
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
            .key(self.user_key(user))
            .key(self.due_key(user))
            .key(self.seen_key(user))
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

    /// Users whose every session lapsed (their nodes died or went silent), now offline: one
    /// script per bucket (each touches one slot), the buckets' scripts at once.
    pub async fn sweep_lapsed(&self) -> redis::RedisResult<Vec<Change>> {
        let _timer = crate::metrics::get()
            .cluster
            .presence_script("sweep")
            .start_timer();
        let sweeps = self.every_bucket().into_iter().map(|bucket| async move {
            let prefix = bucket_prefix(bucket);
            self.sweep
                .key(format!("{prefix}due"))
                .key(format!("{prefix}seen"))
                .arg(now_ms())
                .arg(SWEEP_LIMIT)
                .arg(format!("{prefix}{USERS}"))
                .invoke_async::<Vec<String>>(&mut self.conn.clone())
                .await
        });
        let mut changes = Vec::new();
        for flat in futures_util::future::try_join_all(sweeps).await? {
            changes.extend(flat.chunks_exact(2).map(|pair| Change {
                user: pair[0].clone(),
                online: false,
                last_seen_ms: pair[1].parse().unwrap_or(0),
            }));
        }
        Ok(changes)
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
        let mut commands = Vec::with_capacity(2 * users.len());
        for user in users {
            let key = self.user_key(user);
            let mut count = redis::cmd("ZCOUNT");
            count.arg(&key).arg(now).arg("+inf");
            commands.push(Keyed::new(key.as_bytes(), count));
            let mut seen = redis::cmd("HGET");
            seen.arg(self.seen_key(user)).arg(user);
            commands.push(Keyed::new(key.as_bytes(), seen));
        }
        let replies = self.conn.batch(commands).await?;
        let replies: Vec<Option<u64>> = replies
            .into_iter()
            .map(|reply| redis::from_redis_value(reply).map_err(redis::RedisError::from))
            .collect::<redis::RedisResult<_>>()?;
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
