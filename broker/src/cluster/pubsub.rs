//! The subscriber's connection, for either kind of Redis (`redis_link.rs`), so `subscriber.rs`
//! keeps one reconnect-and-reconcile loop:
//! - one server: the crate's PubSub connection (RESP2), SUBSCRIBE and PSUBSCRIBE;
//! - Redis Sentinel: the same, on the primary the sentinels name at each (re)connect; the
//!   periodic PING also asks them whether it is still the primary, since a primary demoted
//!   while reachable (a partition healed, a manual failover) would keep this connection open
//!   and silent: other nodes publish on the new primary;
//! - a Redis Cluster: a RESP3 cluster connection whose pushes arrive on a bounded queue; user
//!   and room channels are SSUBSCRIBEd (one command per slot, as the server requires), topics
//!   and the control channel SUBSCRIBEd classically, globs PSUBSCRIBEd.
//!
//! On a cluster a lost shard connection (a primary killed, a failover) is reported by the
//! library as a `Disconnection` push, and a slot moved away (resharding, a primary demoted)
//! by the server as an SUNSUBSCRIBE of a channel still wanted: both end the connected period,
//! so the subscriber reconnects and subscribes everything again on the new topology, rather
//! than trusting which subscriptions survived.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{PubSubSink, PubSubStream};
use redis::cluster_async::ClusterConnection;
use redis::{AsyncConnectionConfig, Msg, PushInfo, PushKind, RedisResult};
use tokio::sync::mpsc;

use super::channel::{CONTROL, Channel};
use super::health::Health;
use super::link::{self, Link};
use super::redis_link::Conn;
use super::sentinel::Sentinels;

/// Longest wait for a connection or a command reply before the link counts as down.
pub const TIMEOUT: Duration = Duration::from_secs(3);
/// On Sentinel, how long one reconnect attempt keeps asking while a failover is under way
/// (`Sentinels::resolve_through_failover`): about a failover's length with
/// `down-after-milliseconds` 1–5 s; past it the subscriber's backoff takes over.
const FAILOVER_PATIENCE: Duration = Duration::from_secs(10);
/// Channels per SUBSCRIBE command when subscribing many at once.
const CHUNK: usize = 256;
/// Pushes waiting for the subscriber on a cluster connection. The subscriber only decodes and
/// hands each to local sessions, so this fills only if it is starved; a full queue drops the
/// message (cross-node delivery is at most once; sync recovers chat messages).
const PUSHES: usize = 65_536;

/// What the connection brought.
pub enum Event {
    Message(Msg),
    /// The server dropped this channel's subscription (its slot moved to another shard).
    Dropped(String),
    /// The connection (or one shard's) is gone.
    Lost,
}

pub enum PubSub {
    Single {
        sink: PubSubSink,
        stream: PubSubStream,
        /// On Sentinel: the sentinels, and the primary this connection is on.
        primary: Option<(Arc<Sentinels>, String)>,
    },
    Cluster {
        conn: ClusterConnection,
        pushes: mpsc::Receiver<PushInfo>,
    },
}

impl PubSub {
    pub async fn open(link: &Link, health: &Arc<Health>) -> Result<PubSub, String> {
        match link {
            Link::Single(client) => {
                let pubsub = within(client.get_async_pubsub()).await?;
                let (sink, stream) = pubsub.split();
                Ok(PubSub::Single {
                    sink,
                    stream,
                    primary: None,
                })
            }
            Link::Sentinel(sentinels) => {
                let config = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(TIMEOUT))
                    .set_response_timeout(Some(TIMEOUT));
                let (resolved, _) = sentinels
                    .resolve_through_failover(&config, FAILOVER_PATIENCE)
                    .await
                    .map_err(|e| e.to_string())?;
                let pubsub = within(resolved.client.get_async_pubsub()).await?;
                let (sink, stream) = pubsub.split();
                Ok(PubSub::Single {
                    sink,
                    stream,
                    primary: Some((Arc::clone(sentinels), resolved.addr)),
                })
            }
            Link::Cluster(seeds) => {
                let (tx, pushes) = mpsc::channel(PUSHES);
                let health = Arc::clone(health);
                let client = link::cluster_builder(seeds)
                    .use_protocol(redis::ProtocolVersion::RESP3)
                    .push_sender(move |push: PushInfo| {
                        if tx.try_send(push).is_err() {
                            health.dropped();
                        }
                        Ok::<(), ()>(())
                    })
                    .build()
                    .map_err(|e| e.to_string())?;
                let conn = within(client.get_async_connection()).await?;
                Ok(PubSub::Cluster { conn, pushes })
            }
        }
    }

    pub async fn subscribe_control(&mut self) -> Result<(), String> {
        match self {
            PubSub::Single { sink, .. } => within(sink.subscribe(CONTROL)).await,
            PubSub::Cluster { conn, .. } => within(conn.subscribe(CONTROL)).await,
        }
    }

    /// Subscribes `channels`, each with the command its kind needs.
    pub async fn subscribe(&mut self, channels: &[Channel]) -> Result<(), String> {
        let (globs, plain): (Vec<&Channel>, Vec<&Channel>) =
            channels.iter().partition(|c| c.is_glob());
        match self {
            PubSub::Single { sink, .. } => {
                for chunk in plain.chunks(CHUNK) {
                    within(sink.subscribe(names(chunk))).await?;
                }
                for chunk in globs.chunks(CHUNK) {
                    within(sink.psubscribe(names(chunk))).await?;
                }
            }
            PubSub::Cluster { conn, .. } => {
                let (sharded, classic): (Vec<&Channel>, Vec<&Channel>) =
                    plain.into_iter().partition(|c| c.sharded());
                for chunk in classic.chunks(CHUNK) {
                    within(conn.subscribe(names(chunk))).await?;
                }
                for chunk in globs.chunks(CHUNK) {
                    within(conn.psubscribe(names(chunk))).await?;
                }
                // SSUBSCRIBE takes channels of one slot only.
                let command = Conn::Cluster(conn.clone());
                let named = sharded.iter().map(|c| {
                    let name = c.to_string();
                    (name.clone(), name)
                });
                for group in command.slot_groups(named) {
                    for chunk in group.chunks(CHUNK) {
                        within(conn.ssubscribe(chunk)).await?;
                    }
                }
            }
        }
        Ok(())
    }

    pub async fn unsubscribe(&mut self, channel: &Channel) -> Result<(), String> {
        let name = channel.to_string();
        match self {
            PubSub::Single { sink, .. } if channel.is_glob() => {
                within(sink.punsubscribe(name)).await
            }
            PubSub::Single { sink, .. } => within(sink.unsubscribe(name)).await,
            PubSub::Cluster { conn, .. } if channel.is_glob() => {
                within(conn.punsubscribe(name)).await
            }
            PubSub::Cluster { conn, .. } if channel.sharded() => {
                within(conn.sunsubscribe(name)).await
            }
            PubSub::Cluster { conn, .. } => within(conn.unsubscribe(name)).await,
        }
    }

    pub async fn next(&mut self) -> Event {
        match self {
            PubSub::Single { stream, .. } => match stream.next().await {
                Some(msg) => Event::Message(msg),
                None => Event::Lost,
            },
            PubSub::Cluster { pushes, .. } => loop {
                let Some(push) = pushes.recv().await else {
                    return Event::Lost;
                };
                match push.kind {
                    PushKind::Disconnection => return Event::Lost,
                    PushKind::SUnsubscribe => {
                        let channel = push.data.first().and_then(|v| match v {
                            redis::Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
                            _ => None,
                        });
                        if let Some(channel) = channel {
                            return Event::Dropped(channel);
                        }
                    }
                    PushKind::Message | PushKind::SMessage | PushKind::PMessage => {
                        if let Some(msg) = Msg::from_push_info(push) {
                            return Event::Message(msg);
                        }
                    }
                    _ => {}
                }
            },
        }
    }

    /// A round trip that fails when the link is dead (silent TCP loss is noticed this way).
    pub async fn ping(&mut self) -> Result<(), String> {
        match self {
            // In subscribed mode PING answers ["pong", ""], not a string: accept any reply.
            PubSub::Single { sink, primary, .. } => {
                within(sink.ping::<redis::Value>()).await?;
                let Some((sentinels, on)) = primary else {
                    return Ok(());
                };
                // Sentinels unreachable say nothing about the primary: keep the connection.
                match sentinels.primary_addr().await {
                    Ok(now) if now != *on => Err(format!(
                        "the sentinels now name {now} as the primary; this connection is on {on}"
                    )),
                    _ => Ok(()),
                }
            }
            PubSub::Cluster { conn, .. } => {
                let mut conn = conn.clone();
                within(redis::cmd("PING").query_async::<redis::Value>(&mut conn))
                    .await
                    .map(drop)
            }
        }
    }
}

fn names(channels: &[&Channel]) -> Vec<String> {
    channels.iter().map(ToString::to_string).collect()
}

async fn within<T>(command: impl Future<Output = RedisResult<T>>) -> Result<T, String> {
    match tokio::time::timeout(TIMEOUT, command).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("redis command timed out".into()),
    }
}
