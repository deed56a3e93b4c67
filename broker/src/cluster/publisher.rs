//! The one publisher task: envelopes wait in a bounded queue and leave in pipelined batches of
//! PUBLISH (and, for `/queue`, XADD/XACK) commands over one multiplexed connection, so a burst of N deliveries costs about
//! N / [`BATCH`] round trips instead of N.
//!
//! Full queue policy: the envelope is dropped and counted (`Health::dropped`). Cross-node
//! `/topic` and `/user` delivery is at most once like local delivery; a queue this deep means
//! Redis is unreachable or far slower than the node, and waiting would stall sessions.

use bytes::Bytes;
use redis::aio::ConnectionManager;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::backoff::Backoff;
use super::channel::{FIELD, GROUP};
use super::health::Health;

/// Envelopes waiting to be published. 16,384 covers a fan-out burst to a large group many
/// times over while bounding memory to a few MiB of typical chat messages.
pub const QUEUE: usize = 16_384;
/// PUBLISH commands per pipeline: large enough to amortize the round trip, small enough that
/// the first message of a batch does not wait long for the last.
const BATCH: usize = 256;

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
    /// XACK and XDEL a stream entry this node has seen consumed.
    Ack { stream: String, id: String },
}

/// Queues a command for the publisher; a full queue drops it and counts the drop.
pub fn send(publish_tx: &mpsc::Sender<Outgoing>, health: &Health, outgoing: Outgoing) {
    if publish_tx.try_send(outgoing).is_err() {
        health.dropped();
    }
}

impl Outgoing {
    fn add_to(&self, pipe: &mut redis::Pipeline) {
        match self {
            Outgoing::Publish { channel, bytes } => {
                pipe.cmd("PUBLISH").arg(channel).arg(&bytes[..]).ignore();
            }
            Outgoing::Append {
                stream,
                bytes,
                max_len,
            } => {
                pipe.cmd("XADD")
                    .arg(stream)
                    .arg("MAXLEN")
                    .arg("~")
                    .arg(*max_len)
                    .arg("*")
                    .arg(FIELD)
                    .arg(&bytes[..])
                    .ignore();
            }
            Outgoing::Ack { stream, id } => {
                pipe.cmd("XACK").arg(stream).arg(GROUP).arg(id).ignore();
                pipe.cmd("XDEL").arg(stream).arg(id).ignore();
            }
        }
    }
}

pub async fn run(
    mut rx: mpsc::Receiver<Outgoing>,
    mut conn: ConnectionManager,
    health: Arc<Health>,
    done: CancellationToken,
) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut backoff = Backoff::new();
    let mut failing = false;
    loop {
        let received = tokio::select! {
            () = done.cancelled() => {
                // One last batch: what sessions closing at shutdown told other nodes.
                rx.close();
                while batch.len() < QUEUE {
                    let Ok(outgoing) = rx.try_recv() else { break };
                    batch.push(outgoing);
                }
                if let Err(e) = flush(&mut batch, &mut conn, &health).await {
                    warn!(error = %e, "last publishes at shutdown lost");
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

/// Sends `batch` as one pipeline and empties it; the outcome is counted either way.
async fn flush(
    batch: &mut Vec<Outgoing>,
    conn: &mut ConnectionManager,
    health: &Health,
) -> redis::RedisResult<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let mut pipe = redis::pipe();
    for outgoing in batch.iter() {
        outgoing.add_to(&mut pipe);
    }
    let n = batch.len() as u64;
    batch.clear();
    let sent = pipe.query_async::<()>(conn).await;
    match &sent {
        Ok(()) => health.published(n),
        Err(_) => health.publish_failed(n),
    }
    sent
}
