//! `/queue` across the cluster: each queue is a Redis stream (`sbx:q:<name>`) with one
//! consumer group (`sbx`), so competing consumers compete cluster-wide.
//!
//! - SEND on any node: XADD of the message's envelope (through the publisher's pipeline).
//! - A node with a local consumer that has room (and nothing waiting locally) takes entries with
//!   XREADGROUP as consumer `<node>:<incarnation>` and hands them to its local `Queue`, which
//!   keeps the STOMP semantics (prefetch, ACK/NACK, redelivery within the node).
//! - Consumed (ACKed, or written to an auto-ack subscriber): XACK + XDEL.
//! - The last local consumer leaves with messages still waiting locally: they are appended
//!   again and their old entries acknowledged, so other nodes' consumers get them.
//! - A node that dies leaves entries pending under its consumer name; any node with interest in
//!   the queue sees the consumer's node lease gone (or held by another incarnation) and XCLAIMs
//!   them, delivering them with `redelivered:true`.
//!
//! Polling, not a blocking read: XREADGROUP BLOCK would hold the shared multiplexed connection.
//! A node polls every [`POLL`] only while some local consumer has room (otherwise it looks at
//! its queues every [`IDLE`]), so idle queues cost little and a busy one is read again at once.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use super::redis_link::Conn;
use dashmap::DashMap;
use redis::streams::{
    StreamClaimReply, StreamId, StreamPendingCountReply, StreamPendingReply, StreamReadReply,
};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::channel::{FIELD, GROUP, PREFIX};
use super::envelope::{Envelope, Kind};
use super::health::Health;
use super::publisher::{Outgoing, PublishTx};
use crate::message::Message;
use crate::router::Router;
use crate::router::queue::Queue;

/// Between reads while consumers have room but the streams were empty: the latency a queue
/// message may wait in Redis, against one cheap command per poll.
const POLL: Duration = Duration::from_millis(10);
/// Between looks at the local queues while none has a consumer with room: how long a new
/// consumer may wait for its first read.
const IDLE: Duration = Duration::from_millis(100);
/// Between attempts while Redis fails.
const RETRY: Duration = Duration::from_millis(500);
/// Entries per stream per read: a few prefetch windows' worth.
const COUNT: usize = 32;
/// How often dead nodes' pending entries are looked for.
const RECLAIM_EVERY: Duration = Duration::from_secs(1);

pub fn key(queue: &str) -> String {
    format!("{PREFIX}q:{queue}")
}

#[derive(Debug)]
pub struct Streams {
    node_id: u16,
    /// This process's consumer name: `<node>:<incarnation>`.
    consumer: String,
    /// Message id → (stream, entry id) of entries read here and not yet consumed.
    pending: DashMap<u64, (String, String)>,
    publish_tx: PublishTx,
    health: Arc<Health>,
    max_len: usize,
    /// `--queue-idle-expiry`: how long every node must have left a stream alone before an
    /// expiring node may delete it.
    idle_expiry: Duration,
}

impl Streams {
    pub fn new(
        node_id: u16,
        incarnation: &str,
        publish_tx: PublishTx,
        health: Arc<Health>,
        max_len: usize,
        idle_expiry: Duration,
    ) -> Self {
        Self {
            node_id,
            consumer: format!("{node_id}:{incarnation}"),
            pending: DashMap::new(),
            publish_tx,
            health,
            max_len,
            idle_expiry,
        }
    }

    /// This node's `queue` expired (idle and empty here): its stream goes too if it is empty
    /// and idle for every node (see the script in `publisher.rs`).
    pub fn expired(&self, queue: &str) {
        self.send(Outgoing::Expire {
            stream: key(queue),
            idle_ms: u64::try_from(self.idle_expiry.as_millis()).unwrap_or(u64::MAX),
        });
    }

    fn send(&self, outgoing: Outgoing) {
        self.publish_tx.send(&self.health, outgoing);
    }

    pub fn append(&self, queue: &str, message: &Message) {
        let envelope = Envelope::of(self.node_id, Kind::Queue, queue, message, false);
        match envelope.encode() {
            Ok(bytes) => self.send(Outgoing::Append {
                stream: key(queue),
                bytes,
                max_len: self.max_len,
            }),
            Err(e) => warn!(queue, error = %e, "queue message not stored in redis"),
        }
    }

    /// Messages consumed for good: their entries are acknowledged.
    pub fn consumed(&self, ids: &[u64]) {
        for id in ids {
            if let Some((_, (stream, id))) = self.pending.remove(id) {
                self.send(Outgoing::Ack { stream, id });
            }
        }
    }

    /// Entries become messages in `queue`; each is remembered for its acknowledgement.
    fn take_in(&self, queue: &Arc<Queue>, stream: &str, entries: &[StreamId], redelivered: bool) {
        let mut messages = Vec::with_capacity(entries.len());
        for entry in entries {
            let envelope = match entry.map.get(FIELD) {
                Some(redis::Value::BulkString(bytes)) => Envelope::try_from(&bytes[..]),
                _ => Err(super::envelope::EnvelopeError::Truncated),
            };
            match envelope {
                Ok(envelope) => {
                    let message = envelope.message();
                    self.pending
                        .insert(message.id, (stream.to_string(), entry.id.clone()));
                    messages.push((message, redelivered));
                }
                Err(e) => {
                    // Unreadable: acknowledge it away rather than read it forever.
                    self.health.malformed();
                    debug!(stream, error = %e, "malformed queue entry dropped");
                    self.send(Outgoing::Ack {
                        stream: stream.to_string(),
                        id: entry.id.clone(),
                    });
                }
            }
        }
        if !messages.is_empty() {
            queue.requeue(messages, None);
        }
    }

    /// Messages waiting in a queue that lost its last local consumer go back to the stream.
    fn hand_back(&self, queue: &Queue) {
        for message in queue.take_orphans() {
            self.append(&queue.name, &message);
            self.consumed(&[message.id]);
        }
    }
}

/// Reads the streams of queues with local room until `done`.
pub async fn run(
    streams: Arc<Streams>,
    router: Arc<Router>,
    mut conn: Conn,
    done: CancellationToken,
) {
    let mut groups: HashSet<String> = HashSet::new();
    let mut next_reclaim = Instant::now();
    let mut failing = false;
    let mut next_prune = Instant::now();
    loop {
        let queues = router.local_queues();
        for queue in &queues {
            streams.hand_back(queue);
        }
        if Instant::now() >= next_prune {
            // Streams of queues this node no longer keeps (expired) are forgotten here too.
            next_prune = Instant::now() + RECLAIM_EVERY;
            let kept: HashSet<String> = queues.iter().map(|q| key(&q.name)).collect();
            groups.retain(|stream| kept.contains(stream));
        }
        let wanted: HashMap<String, Arc<Queue>> = queues
            .into_iter()
            .filter(|q| q.wants_more())
            .map(|q| (key(&q.name), q))
            .collect();
        let mut read_any = false;
        let idle = wanted.is_empty();
        if !idle {
            let result = async {
                ensure_groups(&mut conn, &wanted, &mut groups).await?;
                read_any = read(&streams, &mut conn, &wanted).await?;
                if Instant::now() >= next_reclaim {
                    next_reclaim = Instant::now() + RECLAIM_EVERY;
                    reclaim(&streams, &mut conn, &wanted).await?;
                }
                Ok::<(), redis::RedisError>(())
            }
            .await;
            match result {
                Ok(()) if failing => {
                    failing = false;
                    info!("reading queue streams again");
                }
                Ok(()) => {}
                // A stream another node deleted as idle (`Streams::expired`) while this node
                // still had its group in mind: made again at once, not an outage.
                Err(e) if e.code() == Some("NOGROUP") => {
                    debug!(error = %e, "a queue stream was deleted as idle; making it again");
                    groups.clear();
                }
                Err(e) => {
                    if !failing {
                        failing = true;
                        warn!(error = %e, "reading queue streams failed; retrying");
                    }
                    // Redis may have restarted empty: groups are made again.
                    groups.clear();
                }
            }
        }
        if read_any {
            continue;
        }
        tokio::select! {
            () = done.cancelled() => return,
            () = tokio::time::sleep(match (failing, idle) {
                (true, _) => RETRY,
                (false, true) => IDLE,
                (false, false) => POLL,
            }) => {}
        }
    }
}

async fn ensure_groups(
    conn: &mut Conn,
    wanted: &HashMap<String, Arc<Queue>>,
    groups: &mut HashSet<String>,
) -> redis::RedisResult<()> {
    for stream in wanted.keys() {
        if groups.contains(stream) {
            continue;
        }
        // From 0: messages sent before any consumer existed are in the stream already.
        let created: redis::RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(stream)
            .arg(GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(conn)
            .await;
        match created {
            Ok(()) => {}
            Err(e) if e.code() == Some("BUSYGROUP") => {}
            Err(e) => return Err(e),
        }
        groups.insert(stream.clone());
    }
    Ok(())
}

/// One XREADGROUP over every wanted stream (one per slot on a Redis Cluster, where a command's
/// keys must share one); `true` when anything came.
async fn read(
    streams: &Streams,
    conn: &mut Conn,
    wanted: &HashMap<String, Arc<Queue>>,
) -> redis::RedisResult<bool> {
    let mut any = false;
    for group in conn.slot_groups(wanted.keys().map(|stream| (stream, stream))) {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(GROUP)
            .arg(&streams.consumer)
            .arg("COUNT")
            .arg(COUNT)
            .arg("STREAMS");
        for stream in &group {
            cmd.arg(stream);
        }
        for _ in &group {
            cmd.arg(">");
        }
        let reply: Option<StreamReadReply> = cmd.query_async(conn).await?;
        for stream in reply.map(|r| r.keys).unwrap_or_default() {
            if let Some(queue) = wanted.get(&stream.key) {
                any |= !stream.ids.is_empty();
                streams.take_in(queue, &stream.key, &stream.ids, false);
            }
        }
    }
    Ok(any)
}

/// Claims the pending entries of consumers whose node is gone.
async fn reclaim(
    streams: &Streams,
    conn: &mut Conn,
    wanted: &HashMap<String, Arc<Queue>>,
) -> redis::RedisResult<()> {
    for (stream, queue) in wanted {
        let summary: StreamPendingReply = redis::cmd("XPENDING")
            .arg(stream)
            .arg(GROUP)
            .query_async(conn)
            .await?;
        let StreamPendingReply::Data(data) = summary else {
            continue;
        };
        for owner in data.consumers {
            if owner.name == streams.consumer || alive(conn, &owner.name).await? {
                continue;
            }
            let pending: StreamPendingCountReply = redis::cmd("XPENDING")
                .arg(stream)
                .arg(GROUP)
                .arg("-")
                .arg("+")
                .arg(COUNT)
                .arg(&owner.name)
                .query_async(conn)
                .await?;
            if pending.ids.is_empty() {
                continue;
            }
            let mut claim = redis::cmd("XCLAIM");
            claim.arg(stream).arg(GROUP).arg(&streams.consumer).arg(0);
            for p in &pending.ids {
                claim.arg(&p.id);
            }
            let claimed: StreamClaimReply = claim.query_async(conn).await?;
            info!(
                stream,
                dead = %owner.name,
                claimed = claimed.ids.len(),
                "took over a dead node's unacknowledged queue messages"
            );
            streams.take_in(queue, stream, &claimed.ids, true);
        }
    }
    Ok(())
}

/// Whether the node behind consumer `<node>:<incarnation>` still holds its lease.
async fn alive(conn: &mut Conn, consumer: &str) -> redis::RedisResult<bool> {
    let Some((node, incarnation)) = consumer.split_once(':') else {
        return Ok(true);
    };
    let lease: Option<String> = redis::cmd("GET")
        .arg(format!("{PREFIX}node:{node}"))
        .query_async(conn)
        .await?;
    Ok(lease.is_some_and(|token| token.ends_with(&format!(":{incarnation}"))))
}
