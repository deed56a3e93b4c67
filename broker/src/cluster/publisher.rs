//! The one publisher task: envelopes wait in a bounded queue and leave in pipelined batches of
//! PUBLISH (and, for `/queue`, XADD/XACK) commands over one multiplexed connection, so a burst of N deliveries costs about
//! N / [`BATCH`] round trips instead of N.
//!
//! Full queue policy (at [`QUEUE`] commands or [`QUEUE_BYTES`] bytes): the envelope is
//! dropped and counted (`Health::dropped`). Cross-node `/topic` and `/user` delivery is at most
//! once like local delivery; a queue this deep means Redis is unreachable or far slower than the
//! node, and waiting would stall sessions.

use super::redis_link::{Conn, Keyed};
use bytes::Bytes;
use redis::{ServerErrorKind, Value};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::backoff::Backoff;
use super::channel::{FIELD, GROUP};
use super::health::Health;

/// Envelopes waiting to be published. 16,384 covers a fan-out burst to a large group many
/// times over while bounding memory to a few MiB of typical chat messages.
pub const QUEUE: usize = 16_384;
/// Bytes of commands waiting: the count alone would let 16,384 envelopes of 4 MiB frames
/// (64 GiB) pile up while Redis is away; 64 MiB is thousands of chat messages.
pub const QUEUE_BYTES: usize = 64 * 1024 * 1024;
/// Queue entries (commands and marks) per pipeline. One pipeline is in flight at a time, so
/// the publisher carries at most BATCH entries per round trip: a batch only fills when a
/// backlog waits, and then a larger one is what keeps up. At 256, on 2 shared cores with
/// round trips of tens of ms, a node published ~4k commands/s while Redis took 60k/s
/// pipelined: 3 nodes at 8k chat msgs/s (3 PUBLISH and a mark per message) filled the queue
/// and dropped copies (docs/benchmarks.md, "Cross-node chat on 3 streamed-store nodes").
const BATCH: usize = 2048;
/// Longest the final flush at shutdown may take (`Cluster::stopped` waits about as long).
const LAST_FLUSH: std::time::Duration = std::time::Duration::from_secs(2);

/// One command for Redis.
#[derive(Debug)]
pub enum Outgoing {
    /// PUBLISH an envelope on a channel.
    Publish { channel: String, bytes: Bytes },
    /// XADD a `/queue` message to its stream, trimmed to about `max_len` entries.
    Append {
        stream: String,
        bytes: Bytes,
        max_len: usize,
    },
    /// EVAL a script (a `/topic` publish positioned in its shared history, `history.rs`).
    Eval(Eval),
    /// XACK and XDEL a stream entry this node has seen consumed.
    Ack { stream: String, id: String },
    /// DEL a queue's stream if it is empty and no node has used it for `idle_ms`.
    Expire { stream: String, idle_ms: u64 },
    /// Not a command: answered once every command queued before it has been sent to Redis
    /// (dropped unanswered when that failed), so a chat RECEIPT can promise that the other
    /// nodes' copies have left this node (see `Peers::flushed`).
    Mark(oneshot::Sender<()>),
}

/// A script run in the pipeline, in order with the publishes around it. Sent as EVALSHA (its
/// 40-byte hash, not its text: the shared-history append is ~1.5 KB per publish); where the
/// server's script cache lacks it (a restarted Redis, a promoted replica) the reply is
/// NOSCRIPT, the script did not run, and [`flush`] sends those calls again as EVAL, which
/// caches it for the next batches.
#[derive(Debug)]
pub struct Eval {
    pub script: &'static Lua,
    pub keys: Vec<String>,
    pub args: Vec<Bytes>,
}

/// A Lua script's text and its SHA-1 (what EVALSHA names it by).
#[derive(Debug)]
pub struct Lua {
    text: String,
    sha: String,
}

impl Lua {
    pub fn new(text: String) -> Self {
        let sha = redis::Script::new(&text).get_hash().to_string();
        Self { text, sha }
    }
}

impl Eval {
    /// EVALSHA, or EVAL with the text (`cached` false), with the key that places it on a
    /// cluster (its keys share one hash tag: the first).
    fn command(&self, cached: bool) -> Keyed {
        let mut cmd = if cached {
            let mut cmd = redis::cmd("EVALSHA");
            cmd.arg(&self.script.sha);
            cmd
        } else {
            let mut cmd = redis::cmd("EVAL");
            cmd.arg(&self.script.text);
            cmd
        };
        cmd.arg(self.keys.len())
            .arg(&self.keys)
            .arg(self.args.iter().map(|a| &a[..]).collect::<Vec<_>>());
        let key = self.keys.first().map_or(&b""[..], |k| k.as_bytes());
        Keyed::new(key, cmd)
    }
}

/// Deletes a queue's stream (and its consumer group) when it holds no entry, none is pending
/// with any consumer, and every consumer of the group has been idle (no read) for ARGV[2] ms:
/// then no node has a consumer reading it, and a SEND after it simply makes the stream again.
/// Atomic in Redis, so no XADD can slip between the checks and the DEL.
const EXPIRE_SCRIPT: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('XLEN', KEYS[1]) > 0 then return 0 end
local ok, consumers = pcall(redis.call, 'XINFO', 'CONSUMERS', KEYS[1], ARGV[1])
if ok then
  for _, c in ipairs(consumers) do
    local f = {}
    for i = 1, #c, 2 do f[c[i]] = c[i + 1] end
    if tonumber(f['pending']) > 0 or tonumber(f['idle']) < tonumber(ARGV[2]) then return 0 end
  end
end
return redis.call('DEL', KEYS[1])
";

/// The way into the publisher's queue, bounded in commands and in bytes; cheap to clone.
#[derive(Debug, Clone)]
pub struct PublishTx {
    tx: mpsc::Sender<Outgoing>,
    bytes: Arc<AtomicUsize>,
    max_bytes: usize,
}

/// The publisher's end of the queue.
#[derive(Debug)]
pub struct PublishRx {
    rx: mpsc::Receiver<Outgoing>,
    bytes: Arc<AtomicUsize>,
}

/// A queue of at most `max` commands and `max_bytes` bytes.
pub fn queue(max: usize, max_bytes: usize) -> (PublishTx, PublishRx) {
    let (tx, rx) = mpsc::channel(max);
    let bytes = Arc::new(AtomicUsize::new(0));
    let publish_tx = PublishTx {
        tx,
        bytes: Arc::clone(&bytes),
        max_bytes,
    };
    (publish_tx, PublishRx { rx, bytes })
}

impl PublishTx {
    /// Queues a command for the publisher; a full queue drops it and counts the drop.
    pub fn send(&self, health: &Health, outgoing: Outgoing) {
        if !self.queue(outgoing) {
            health.dropped();
        }
    }

    /// Past half full, in commands or bytes: a publisher feeding it should slow down (a
    /// shared topic history delivers only through it, so a full queue would lose messages
    /// for every subscriber, not only other nodes').
    pub fn pressed(&self) -> bool {
        self.tx.capacity() < self.tx.max_capacity() / 2
            || self.bytes.load(Ordering::Acquire) > self.max_bytes / 2
    }

    /// Queues a mark behind everything queued so far (see [`Outgoing::Mark`]). A full queue
    /// drops it uncounted (it is no delivery): its receiver then resolves at once.
    pub fn mark(&self) -> oneshot::Receiver<()> {
        let (mark, flushed) = oneshot::channel();
        self.queue(Outgoing::Mark(mark));
        flushed
    }

    /// Into the queue if it fits in commands and bytes; false when it was dropped.
    fn queue(&self, outgoing: Outgoing) -> bool {
        let weight = outgoing.weight();
        let fits = self
            .bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                held.checked_add(weight).filter(|b| *b <= self.max_bytes)
            })
            .is_ok();
        if !fits {
            return false;
        }
        if self.tx.try_send(outgoing).is_err() {
            self.bytes.fetch_sub(weight, Ordering::AcqRel);
            return false;
        }
        true
    }
}

impl PublishRx {
    /// Up to `limit` commands into `batch` (waiting for the first); 0 when closed and empty.
    async fn recv_many(&mut self, batch: &mut Vec<Outgoing>, limit: usize) -> usize {
        let from = batch.len();
        let n = self.rx.recv_many(batch, limit).await;
        self.taken(&batch[from..]);
        n
    }

    fn try_recv(&mut self) -> Option<Outgoing> {
        let outgoing = self.rx.try_recv().ok()?;
        self.taken(std::slice::from_ref(&outgoing));
        Some(outgoing)
    }

    fn close(&mut self) {
        self.rx.close();
    }

    /// These left the queue: their bytes are free again.
    fn taken(&self, taken: &[Outgoing]) {
        let bytes: usize = taken.iter().map(Outgoing::weight).sum();
        self.bytes.fetch_sub(bytes, Ordering::AcqRel);
    }
}

impl Outgoing {
    /// Bytes the command holds while queued (a fixed overhead for the bookkeeping).
    fn weight(&self) -> usize {
        64 + match self {
            Outgoing::Publish { channel, bytes } => channel.len() + bytes.len(),
            Outgoing::Append { stream, bytes, .. } => stream.len() + bytes.len(),
            Outgoing::Eval(eval) => {
                eval.keys.iter().map(String::len).sum::<usize>()
                    + eval.args.iter().map(Bytes::len).sum::<usize>()
            }
            Outgoing::Ack { stream, id } => stream.len() + id.len(),
            Outgoing::Expire { stream, .. } => stream.len(),
            Outgoing::Mark(_) => 0,
        }
    }

    /// The command(s) for Redis, each with the key that places it on a cluster.
    fn commands(&self, conn: &Conn, out: &mut Vec<Keyed>) {
        match self {
            Outgoing::Publish { channel, bytes } => {
                let mut cmd = redis::cmd(conn.publish_command(channel));
                cmd.arg(channel).arg(&bytes[..]);
                out.push(Keyed::new(channel.as_bytes(), cmd));
            }
            Outgoing::Append {
                stream,
                bytes,
                max_len,
            } => {
                let mut cmd = redis::cmd("XADD");
                cmd.arg(stream)
                    .arg("MAXLEN")
                    .arg("~")
                    .arg(*max_len)
                    .arg("*")
                    .arg(FIELD)
                    .arg(&bytes[..]);
                out.push(Keyed::new(stream.as_bytes(), cmd));
            }
            Outgoing::Eval(eval) => out.push(eval.command(true)),
            Outgoing::Ack { stream, id } => {
                let mut ack = redis::cmd("XACK");
                ack.arg(stream).arg(GROUP).arg(id);
                out.push(Keyed::new(stream.as_bytes(), ack));
                let mut del = redis::cmd("XDEL");
                del.arg(stream).arg(id);
                out.push(Keyed::new(stream.as_bytes(), del));
            }
            Outgoing::Expire { stream, idle_ms } => {
                let mut cmd = redis::cmd("EVAL");
                cmd.arg(EXPIRE_SCRIPT)
                    .arg(1)
                    .arg(stream)
                    .arg(GROUP)
                    .arg(*idle_ms);
                out.push(Keyed::new(stream.as_bytes(), cmd));
            }
            Outgoing::Mark(_) => {}
        }
    }
}

pub async fn run(mut rx: PublishRx, mut conn: Conn, health: Arc<Health>, done: CancellationToken) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut backoff = Backoff::new();
    let mut failing = false;
    loop {
        let received = tokio::select! {
            () = done.cancelled() => {
                // One last batch: what sessions closing at shutdown told other nodes.
                rx.close();
                while batch.len() < QUEUE {
                    let Some(outgoing) = rx.try_recv() else { break };
                    batch.push(outgoing);
                }
                // Bounded: a cluster client retries a failing shard for longer than shutdown waits.
                match tokio::time::timeout(LAST_FLUSH, flush(&mut batch, &mut conn, &health)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => warn!(error = %e, "last publishes at shutdown lost"),
                    Err(_) => warn!("last publishes at shutdown lost: redis did not answer in time"),
                }
                return;
            }
            n = rx.recv_many(&mut batch, BATCH) => n,
        };
        if received == 0 {
            return;
        }
        match flush(&mut batch, &mut conn, &health).await {
            Ok(()) => {
                backoff.reset();
                if failing {
                    failing = false;
                    info!("publishing to redis again");
                }
            }
            Err(e) => {
                if !failing {
                    failing = true;
                    warn!(error = %e, "publishing to redis failed: cross-node deliveries are being lost until it is back");
                }
                // Let the connection manager reconnect instead of failing every batch at once.
                tokio::time::sleep(backoff.next_delay()).await;
            }
        }
    }
}

/// Sends `batch` as one pipeline and empties it; the outcome is counted either way. The
/// batch's marks are answered when it was sent, dropped when it failed.
async fn flush(
    batch: &mut Vec<Outgoing>,
    conn: &mut Conn,
    health: &Health,
) -> redis::RedisResult<()> {
    let mut commands = Vec::with_capacity(batch.len());
    let mut marks = Vec::new();
    // Each script call, and where its reply is among the commands'.
    let mut evals: Vec<(usize, Eval)> = Vec::new();
    let mut n = 0u64;
    for outgoing in batch.drain(..) {
        match outgoing {
            Outgoing::Mark(mark) => marks.push(mark),
            command => {
                let at = commands.len();
                command.commands(conn, &mut commands);
                if let Outgoing::Eval(eval) = command {
                    evals.push((at, eval));
                }
                n += 1;
            }
        }
    }
    if n == 0 {
        answer(marks);
        return Ok(());
    }
    // A command Redis refused (say, XADD on a key of another type) fails the batch as before.
    let sent = match conn.batch_each(commands).await {
        Ok(replies) => uncached_again(conn, &evals, replies).await,
        Err(e) => Err(e),
    }
    .and_then(|replies| {
        replies
            .into_iter()
            .find_map(|reply| reply.extract_error().err())
            .map_or(Ok(()), Err)
    });
    match &sent {
        Ok(()) => {
            health.published(n);
            answer(marks);
        }
        Err(_) => health.publish_failed(n),
    }
    sent
}

/// The batch's replies, where each EVALSHA the server answered NOSCRIPT (it did not run) has
/// been sent again as EVAL, in the batch's order, and replaced by that reply.
async fn uncached_again(
    conn: &Conn,
    evals: &[(usize, Eval)],
    mut replies: Vec<Value>,
) -> redis::RedisResult<Vec<Value>> {
    let missing: Vec<&(usize, Eval)> = evals
        .iter()
        .filter(|(at, _)| matches!(replies.get(*at), Some(Value::ServerError(e)) if e.kind() == Some(ServerErrorKind::NoScript)))
        .collect();
    if missing.is_empty() {
        return Ok(replies);
    }
    let again = conn
        .batch_each(
            missing
                .iter()
                .map(|(_, eval)| eval.command(false))
                .collect(),
        )
        .await?;
    for ((at, _), reply) in missing.into_iter().zip(again) {
        replies[*at] = reply;
    }
    Ok(replies)
}

/// Tells whoever waits on `marks` that what came before them was sent (a waiter that gave up
/// is no error).
fn answer(marks: Vec<oneshot::Sender<()>>) {
    for mark in marks {
        let _ = mark.send(());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish(size: usize) -> Outgoing {
        Outgoing::Publish {
            channel: "c".into(),
            bytes: Bytes::from(vec![0u8; size]),
        }
    }

    #[tokio::test]
    async fn the_queue_is_bounded_in_bytes_and_frees_what_leaves() {
        let health = Health::default();
        let (tx, mut rx) = queue(100, 1000);
        tx.send(&health, publish(500));
        tx.send(&health, publish(500));
        assert_eq!(health.snapshot(0).dropped, 1, "past 1,000 bytes: dropped");
        let mut batch = Vec::new();
        assert_eq!(rx.recv_many(&mut batch, 10).await, 1);
        tx.send(&health, publish(500));
        assert_eq!(health.snapshot(0).dropped, 1, "room again once taken");
    }
}
