//! Cluster mode: several nodes share one Redis, so any user reaches any user on any node.
//!
//! Map (the channel scheme, envelope and failure behaviour: docs/decisions/2026-11-28-cluster.md):
//! - [`link`]: where Redis is: one server, plain or TLS (`rediss://`, `--redis-ca`), one primary
//!   behind Redis Sentinel (`redis+sentinel://sentinel,…/NAME`), or a Redis Cluster
//!   (`redis-cluster://seed,seed,…`);
//! - [`sentinel`]: asking the sentinels where the primary is; [`primary`]: the command
//!   connection that re-resolves it after a failover;
//! - [`redis_link`]: the seam over the two kinds (the command connection, pipelines split per
//!   slot on a cluster, sharded pub/sub for user and room channels);
//! - [`pubsub`]: the subscriber's connection on either kind;
//! - [`node`]: the node id lease (ids feed the Snowflake message ids);
//! - [`channel`]: channel names; [`envelope`]: what travels on them;
//! - [`interest`]: per-channel counts of local subscriptions, the truth the subscriber follows;
//! - [`rooms`]: which GROUP rooms' channels local members want (counted into the interest);
//! - [`publisher`]: the bounded queue and pipelined PUBLISH task;
//! - [`stream`]: `/queue` as Redis streams with one consumer group (cluster-wide competing
//!   consumers);
//! - [`subscriber`]: the one PubSub connection, reconnect and resubscribe;
//! - [`inbound`]: delivery of what arrives to local sessions only;
//! - [`peers`]: the router's seam ([`crate::router::Peers`]) over Redis;
//! - [`chat`]: the chat's seam ([`crate::chat::peers::ChatPeers`]) over Redis;
//! - [`presence`]: who is online cluster-wide, in Redis (a chat presence backend);
//! - [`claims`]: `clientMessageId` claims cluster-wide (the streamed store's retry dedup);
//! - [`history`]: resumable `/topic` histories shared by every node (the router's
//!   [`crate::router::shared::SharedHistory`]);
//! - [`health`]: connection state and counters for `/health`.
//!
//! Only the wiring (`broker.rs`, `lib.rs`) names this module: the router and the chat see it
//! through the seams they define. Without `--redis-url` none of this exists and the broker is
//! the single-node one.

mod backoff;
pub mod channel;
mod chat;
mod claims;
pub mod envelope;
mod error;
mod health;
mod history;
mod inbound;
pub mod interest;
mod link;
mod node;
mod peers;
mod positioned;
pub mod presence;
mod primary;
mod publisher;
mod pubsub;
mod push;
mod redis_link;
mod redis_tls;
mod rooms;
mod sentinel;
mod stream;
mod subscriber;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::warn;

pub use channel::Channel;
pub use envelope::{Envelope, Kind};
pub use error::ClusterError;
pub use health::HealthSnapshot;
pub use inbound::ConversationListener;
pub use push::SharedWindows;

use crate::config::ClusterConfig;
use crate::message::Message;
use crate::router::Router;
use health::Health;
use interest::Interest;
use presence::SharedPresence;
use publisher::Outgoing;

/// Longest a sync waits for its user's channel to be subscribed: normally a millisecond; the
/// sequencer applies later operations' effects only after it.
const USER_LIVE_WAIT: Duration = Duration::from_millis(500);
/// Longest shutdown waits for the final flush and the lease release.
const FINISH_TIMEOUT: Duration = Duration::from_secs(2);

/// A node's membership in the cluster.
#[derive(Debug)]
pub struct Cluster {
    node_id: u16,
    link: link::Link,
    conn: redis_link::Conn,
    lease: node::Lease,
    interest: Arc<Interest>,
    rooms: Arc<rooms::Rooms>,
    health: Arc<Health>,
    publish_tx: publisher::PublishTx,
    /// Taken by [`Cluster::start`]: publishes made before it wait in the queue.
    publish_rx: Mutex<Option<publisher::PublishRx>>,
    presence: Arc<SharedPresence>,
    streams: Arc<stream::Streams>,
    /// The tasks whose last act matters at shutdown: the publisher's final flush and the
    /// lease's release.
    finishing: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Cluster {
    /// Connects to Redis and takes a node id (`configured`, or a claimed free one). Redis must
    /// be reachable at startup; afterwards outages are survived.
    pub async fn connect(
        config: &ClusterConfig,
        configured: Option<u16>,
        presence_ttl: Duration,
        queue_max_messages: usize,
        queue_idle_expiry: Duration,
    ) -> Result<Arc<Self>, ClusterError> {
        let link = link::Link::open(config)?;
        let mut conn = link.connect(config).await?;
        let incarnation = format!("{:x}", rand::random::<u64>());
        let token = format!("{}:{incarnation}", std::process::id());
        let lease = node::Lease::acquire(&mut conn, configured, token).await?;
        let (publish_tx, publish_rx) = publisher::queue(publisher::QUEUE, publisher::QUEUE_BYTES);
        let node_id = lease.node_id;
        let health = Arc::new(Health::default());
        let presence = Arc::new(SharedPresence::new(
            conn.clone(),
            Arc::clone(&health),
            node_id,
            &incarnation,
            presence_ttl,
        ));
        let streams = Arc::new(stream::Streams::new(
            node_id,
            &incarnation,
            publish_tx.clone(),
            Arc::clone(&health),
            queue_max_messages,
            queue_idle_expiry,
        ));
        Ok(Arc::new(Self {
            node_id,
            link,
            conn,
            lease,
            interest: Arc::new(Interest::default()),
            rooms: Arc::new(rooms::Rooms::default()),
            health,
            publish_tx,
            publish_rx: Mutex::new(Some(publish_rx)),
            presence,
            streams,
            finishing: Mutex::new(Vec::new()),
        }))
    }

    /// After `done` was cancelled: waits (briefly) for the last publishes to leave and the node
    /// id lease to be released, so other nodes hear this node's last presence changes and the
    /// id is free at once.
    pub async fn stopped(&self) {
        let tasks = std::mem::take(&mut *self.finishing.lock());
        let all = futures_util::future::join_all(tasks);
        if tokio::time::timeout(FINISH_TIMEOUT, all).await.is_err() {
            warn!("redis unreachable at shutdown: the node id lease lapses by itself");
        }
    }

    pub fn node_id(&self) -> u16 {
        self.node_id
    }

    pub fn interest(&self) -> &Interest {
        &self.interest
    }

    /// Waits (briefly) until this node receives `user`'s channel from Redis. A chat sync
    /// calls it before reading the store: a message stored after that read is then delivered
    /// live, so the replay and live delivery leave no gap between them. Skipped while Redis is
    /// unreachable (the sequencer must not stall on it).
    /// The user's GROUP rooms' channels count too: a group message reaches the user on those.
    pub async fn until_user_live(&self, user: &str) {
        let channel = Channel::User(user.to_string());
        // No local subscription of the user: nothing would be delivered live anyway.
        if !self.health.is_connected() || !self.interest.wanted(&channel) {
            return;
        }
        let deadline = tokio::time::Instant::now() + USER_LIVE_WAIT;
        for channel in std::iter::once(channel).chain(self.rooms.of(user)) {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if self.interest.wanted(&channel) && !self.interest.until_live(&channel, left).await {
                warn!(
                    user,
                    %channel,
                    "user or room channel not confirmed by redis in time; syncing anyway"
                );
                return;
            }
        }
    }

    /// Push coalescing windows shared by every node (`cluster/push.rs`).
    pub fn push_windows(&self) -> SharedWindows {
        SharedWindows::new(self.conn.clone(), self.node_id)
    }

    pub fn presence(&self) -> &Arc<SharedPresence> {
        &self.presence
    }

    /// The cluster-wide claims on client ids a streamed store takes before sending to Kafka.
    pub fn client_id_claims(&self) -> Arc<dyn chat_store::SharedClaims> {
        Arc::new(claims::RedisClaims::new(
            self.conn.clone(),
            Arc::clone(&self.health),
        ))
    }

    pub fn health(&self) -> HealthSnapshot {
        self.health.snapshot(self.node_id)
    }

    /// Starts the publisher, the subscriber, the queue stream reader and the lease renewal,
    /// in `tasks`; all stop with `done`. Deliveries from other nodes go to `router`,
    /// conversation snapshots to `conversations`.
    pub fn start(
        &self,
        router: Arc<Router>,
        conversations: ConversationListener,
        tasks: &TaskTracker,
        done: CancellationToken,
    ) {
        let mut finishing = self.finishing.lock();
        if let Some(rx) = self.publish_rx.lock().take() {
            finishing.push(tasks.spawn(publisher::run(
                rx,
                self.conn.clone(),
                Arc::clone(&self.health),
                done.clone(),
            )));
        }
        let inbound = inbound::Inbound {
            node_id: self.node_id,
            router: Arc::clone(&router),
            conversations,
            health: Arc::clone(&self.health),
            interest: Arc::clone(&self.interest),
            rooms: Arc::clone(&self.rooms),
        };
        tasks.spawn(subscriber::run(
            self.link.clone(),
            Arc::clone(&self.interest),
            Arc::clone(&self.health),
            inbound,
            done.clone(),
        ));
        tasks.spawn(stream::run(
            Arc::clone(&self.streams),
            router,
            self.conn.clone(),
            done.clone(),
        ));
        finishing.push(tasks.spawn(self.lease.clone().keep(self.conn.clone(), done)));
    }

    /// Queues `envelope` for `channel`; never waits (see `publisher` for the full policy).
    pub fn publish(&self, channel: &Channel, envelope: &Envelope) {
        match envelope.encode() {
            Ok(bytes) => self.publish_bytes(channel, bytes),
            Err(e) => warn!(%channel, error = %e, "message not sent to other nodes"),
        }
    }

    /// Queues an already encoded envelope (one encoding shared by many channels).
    pub fn publish_bytes(&self, channel: &Channel, bytes: Bytes) {
        self.enqueue(channel.to_string(), bytes);
    }

    fn enqueue(&self, channel: String, bytes: Bytes) {
        self.publish_tx
            .send(&self.health, Outgoing::Publish { channel, bytes });
    }

    /// Resolves once every command queued so far has been sent to Redis; `None` while Redis
    /// is unreachable (waiting would only delay answers: those copies are being lost, and
    /// sync is how members recover them).
    pub fn flushed(&self) -> Option<tokio::sync::oneshot::Receiver<()>> {
        if !self.health.is_connected() {
            return None;
        }
        Some(self.publish_tx.mark())
    }

    /// A `/queue` SEND: appended to the queue's stream, where any node with a consumer takes
    /// it (competing consumers cluster-wide).
    pub fn append_to_queue(&self, queue: &str, message: &Message) {
        self.streams.append(queue, message);
    }
}

impl Cluster {
    /// Tells every other node a conversation's new membership (their caches answer SUBSCRIBE
    /// checks without the store). Sent on the control channel every node listens to.
    pub fn conversation_changed(&self, conversation: &chat_store::Conversation) {
        self.rooms.changed(&self.interest, conversation);
        let body = match serde_json::to_vec(conversation) {
            Ok(body) => Bytes::from(body),
            Err(e) => return warn!(error = %e, "conversation change not sent to other nodes"),
        };
        let envelope = Envelope {
            kind: Kind::Conversation,
            origin: self.node_id,
            message_id: 0,
            published_us: crate::clock::now_us(),
            chat: false,
            droppable: false,
            destination: String::new(),
            route: conversation.id.clone(),
            headers: Vec::new(),
            members: Vec::new(),
            body,
        };
        match envelope.encode() {
            Ok(bytes) => self.enqueue(channel::CONTROL.to_string(), bytes),
            Err(e) => warn!(error = %e, "conversation change not sent to other nodes"),
        }
    }
}
