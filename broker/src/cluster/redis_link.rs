//! Which kind of Redis the cluster runs on, behind one type, so the rest of `cluster/` does not
//! care: one server (`redis://`, `rediss://`, `unix://`, through a `ConnectionManager`), one
//! primary found through Redis Sentinel (`redis+sentinel://…/NAME`, through [`Primary`], which
//! re-resolves it after a failover), or a Redis Cluster (`redis-cluster://host:port,…`, through
//! the redis crate's cluster client, which follows MOVED/ASK redirections and failovers itself).
//! A primary behind Sentinel is one server to everything below: one slot, classic pub/sub.
//!
//! Every command and script runs on [`Conn`] unchanged. Where the two kinds differ, [`Conn`]
//! answers:
//! - [`Conn::batch`] and [`Conn::slot_groups`]: a pipeline (or a multi-key XREADGROUP) may span
//!   keys of any slot on one server, not on a cluster (CROSSSLOT). There it is split per slot;
//!   the commands of one slot keep their order (so two messages on one channel stay in order),
//!   and the slots' pipelines go out concurrently.
//! - [`Conn::publish_command`]: per-user and per-room channels use sharded pub/sub (SPUBLISH)
//!   on a cluster, so a message is handled by the one shard owning the channel's slot; a
//!   classic PUBLISH is broadcast to every cluster node over the bus. Topics stay classic:
//!   wildcard subscriptions need PSUBSCRIBE, which has no sharded form.
//! - [`Conn::presence_buckets`]: presence keys are spread over hash-tagged buckets on a
//!   cluster, so each presence script touches one slot (`presence.rs`).

use std::collections::HashMap;
use std::fmt;

use futures_util::future::try_join_all;
use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::Slot;
use redis::{Cmd, RedisFuture, RedisResult, Value};

use super::channel;
use super::primary::Primary;

/// Presence buckets on a Redis Cluster: presence can spread over at most this many shards
/// (docs/capacity.md sizes 10M users at ~57 at this machine's touch rate), while a sweep (one
/// script per bucket, every TTL/6 per node) stays cheap: 15 nodes, TTL 30 s: ~190 scripts/s.
const CLUSTER_PRESENCE_BUCKETS: u32 = 64;

/// A command connection to the node's Redis; cheap to clone (both kinds multiplex).
#[derive(Clone)]
pub enum Conn {
    Single(ConnectionManager),
    Sentinel(Primary),
    Cluster(ClusterConnection),
}

impl fmt::Debug for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Conn::Single(_) => "Conn::Single",
            Conn::Sentinel(_) => "Conn::Sentinel",
            Conn::Cluster(_) => "Conn::Cluster",
        })
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(conn) => conn.req_packed_command(cmd),
            Conn::Sentinel(conn) => conn.command(cmd),
            Conn::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            Conn::Sentinel(conn) => conn.pipeline(pipeline, offset, count),
            Conn::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(conn) => conn.get_db(),
            // The primary's database 0: redis+sentinel:// names no other.
            Conn::Sentinel(_) => 0,
            Conn::Cluster(conn) => conn.get_db(),
        }
    }
}

/// One command of a [`Conn::batch`], with the key that places it (its slot on a cluster).
pub struct Keyed {
    pub key: Vec<u8>,
    pub cmd: Cmd,
}

impl Keyed {
    pub fn new(key: impl Into<Vec<u8>>, cmd: Cmd) -> Self {
        Self {
            key: key.into(),
            cmd,
        }
    }
}

impl Conn {
    pub fn is_cluster(&self) -> bool {
        matches!(self, Conn::Cluster(_))
    }

    /// Runs `commands` in as few round trips as the kind allows and returns their replies in
    /// the order given: one pipeline on one server, one pipeline per slot on a cluster.
    pub async fn batch(&self, commands: Vec<Keyed>) -> RedisResult<Vec<Value>> {
        self.pipelined(commands, false).await
    }

    /// As [`Conn::batch`], but a command the server refused is its reply
    /// (`Value::ServerError`) rather than the whole batch's error, so the caller sees which.
    pub async fn batch_each(&self, commands: Vec<Keyed>) -> RedisResult<Vec<Value>> {
        self.pipelined(commands, true).await
    }

    async fn pipelined(&self, commands: Vec<Keyed>, each: bool) -> RedisResult<Vec<Value>> {
        if commands.is_empty() {
            return Ok(Vec::new());
        }
        let groups = self.slot_groups(commands.iter().enumerate().map(|(i, c)| (i, &c.key)));
        let total = commands.len();
        let mut commands: Vec<Option<Cmd>> = commands.into_iter().map(|c| Some(c.cmd)).collect();
        let sends = groups.into_iter().map(|indices| {
            let mut pipe = redis::pipe();
            if each {
                pipe.ignore_errors();
            }
            for &i in &indices {
                if let Some(cmd) = commands[i].take() {
                    pipe.add_command(cmd);
                }
            }
            let mut conn = self.clone();
            async move {
                let replies: Vec<Value> = pipe.query_async(&mut conn).await?;
                Ok::<_, redis::RedisError>((indices, replies))
            }
        });
        let mut ordered = vec![Value::Nil; total];
        for (indices, replies) in try_join_all(sends).await? {
            for (i, reply) in indices.into_iter().zip(replies) {
                ordered[i] = reply;
            }
        }
        Ok(ordered)
    }

    /// `items` (an id and the key it touches) grouped so each group may go in one command or
    /// pipeline: all together on one server, by hash slot on a cluster. Order within a group
    /// is the order given.
    pub fn slot_groups<T, K: AsRef<[u8]>>(
        &self,
        items: impl IntoIterator<Item = (T, K)>,
    ) -> Vec<Vec<T>> {
        if !self.is_cluster() {
            let all: Vec<T> = items.into_iter().map(|(item, _)| item).collect();
            return if all.is_empty() {
                Vec::new()
            } else {
                vec![all]
            };
        }
        let mut slots: HashMap<Slot, usize> = HashMap::new();
        let mut groups: Vec<Vec<T>> = Vec::new();
        for (item, key) in items {
            let at = *slots.entry(Slot::for_key(key)).or_insert_with(|| {
                groups.push(Vec::new());
                groups.len() - 1
            });
            groups[at].push(item);
        }
        groups
    }

    /// The command that publishes on `channel`: SPUBLISH for user and room channels on a
    /// cluster, PUBLISH otherwise.
    pub fn publish_command(&self, channel: &str) -> &'static str {
        if self.is_cluster() && channel::is_sharded(channel) {
            "SPUBLISH"
        } else {
            "PUBLISH"
        }
    }

    /// How many hash-tagged buckets presence keys spread over (`presence.rs`); 1 on one
    /// server, where the keys keep their plain names.
    pub fn presence_buckets(&self) -> u32 {
        if self.is_cluster() {
            CLUSTER_PRESENCE_BUCKETS
        } else {
            1
        }
    }
}

/// A hash tag for `name` (`{name}`): keys sharing it share a slot. A name holding `}` would
/// end the tag early (or make it empty, which Redis ignores), so such names are tagged by a
/// stable hash of theirs instead (the same on every node: FNV-1a, not the std hasher's random
/// seed).
pub fn hash_tag(name: &str) -> String {
    if name.contains('}') || name.is_empty() {
        format!("{{#{:016x}}}", fnv1a(name.as_bytes()))
    } else {
        format!("{{{name}}}")
    }
}

/// FNV-1a, 64 bits: a stable spread of names over buckets and tags.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_put_related_keys_in_one_slot_whatever_the_name() {
        for name in ["alice", "a}b", "}", "", "{x}", "with space"] {
            let tag = hash_tag(name);
            let window = format!("sbx:push:w:{tag}");
            let claim = format!("sbx:push:c:{tag}");
            assert_eq!(Slot::for_key(&window), Slot::for_key(&claim), "{name:?}");
        }
        // A plain name's slot is the name's own, as redis-cli would compute it.
        assert_eq!(
            Slot::for_key("x:{alice}"),
            Slot::for_key("alice"),
            "the tag is what is hashed"
        );
        assert_ne!(hash_tag("a}b"), hash_tag("a}c"));
    }
}
