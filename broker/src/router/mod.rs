//! The destination router: maps a destination onto the sessions of this node that should
//! receive it.
//!
//! It owns the subscription tables and queues and never waits on a session: every hand-off is
//! a non-blocking push into a bounded outbox (see `outbox.rs`). It knows nothing of other
//! nodes: what crosses nodes goes through [`Peers`] (`peers.rs`), which cluster mode
//! implements; deliveries from other nodes come back in through `fanout.rs`'s
//! `deliver_*_from_peer`.

mod budget;
mod common_name;
mod fanout;
pub mod gate;
pub mod history;
pub mod peers;
pub mod position;
pub mod queue;
pub mod shared;
pub mod topic;

use std::sync::Arc;

use dashmap::DashMap;

use crate::destination::Destination;
use crate::error::StompError;
use crate::handle::SessionHandle;
use crate::message::{Delivery, Message, Run, Target};
use crate::outbox::Outbound;
use common_name::CommonNames;
pub use fanout::{FanOut, Priority, Select};
use fanout::{admits, delivery, fan_out, fan_out_run};
use gate::{Gate, Resumed};
use history::{History, Position};
pub use peers::{Alone, Peers, Route};
use queue::{Queue, QueueLimits, Queues};
use topic::{Subscriber, TopicTable};

#[derive(Debug)]
pub struct Router {
    /// `/topic/<name>` subscriptions, wildcards allowed.
    topics: TopicTable,
    /// `/user/<user>/queue/<name>` subscriptions, keyed `<user>/<name>`.
    users: TopicTable,
    queues: Queues,
    /// `/temp-queue` reply tokens to the session that owns them.
    replies: DashMap<String, Arc<SessionHandle>>,
    /// Every connected session (for shutdown and, later, metrics).
    sessions: DashMap<u64, Arc<SessionHandle>>,
    /// The other nodes ([`Alone`] on a single node).
    peers: Arc<dyn Peers>,
    /// Recent messages of the topics that keep a resumable history.
    history: History,
    /// Destination names many subscriptions share (`/user/queue/...`), kept once.
    names: CommonNames,
}

impl Router {
    pub fn new(queue_limits: QueueLimits, peers: Arc<dyn Peers>) -> Self {
        Self {
            topics: TopicTable::new(true),
            users: TopicTable::new(false),
            queues: Queues::new(queue_limits, Arc::clone(&peers) as _),
            replies: DashMap::new(),
            sessions: DashMap::new(),
            peers,
            history: History::off(),
            names: CommonNames::default(),
        }
    }

    /// This router with topic histories (`History::off()` unless this is called).
    pub fn with_history(self, history: History) -> Self {
        Self { history, ..self }
    }

    /// The topic histories (their expiry chore, their footprint).
    pub fn history(&self) -> &History {
        &self.history
    }

    /// `name` as a string shared with the other subscriptions made with it (the same
    /// `/user/queue/...` for every chat client).
    pub fn common_name(&self, name: &str) -> Arc<str> {
        self.names.get(name)
    }

    pub fn user_key(user: &str, name: &str) -> String {
        format!("{user}/{name}")
    }

    pub fn register(&self, session: Arc<SessionHandle>) {
        self.sessions.insert(session.id, session);
    }

    pub fn unregister(&self, session: u64) {
        self.sessions.remove(&session);
    }

    pub fn sessions(&self) -> Vec<Arc<SessionHandle>> {
        self.sessions
            .iter()
            .map(|e| Arc::clone(e.value()))
            .collect()
    }

    /// The queue named `name`, created on first use (unless this node keeps its maximum of
    /// queues: ERROR `too many queues`).
    pub fn queue(&self, name: &str) -> Result<Arc<Queue>, StompError> {
        self.queues
            .get(name)
            .map_err(|full| StompError::QueueFull(name.to_string(), full))
    }

    /// Every queue this node keeps (cluster mode's stream reader walks them).
    pub fn local_queues(&self) -> Vec<Arc<Queue>> {
        self.queues.all()
    }

    /// Removes the queues idle past `--queue-idle-expiry` (and tells the peers, which may
    /// hold the queue's shared side); how many went.
    pub fn expire_queues(&self, now: tokio::time::Instant) -> usize {
        let expired = self.queues.expire(now);
        for name in &expired {
            self.peers.queue_expired(name);
        }
        expired.len()
    }

    pub fn add_reply_token(&self, token: String, session: Arc<SessionHandle>) {
        self.replies.insert(token, session);
    }

    pub fn remove_reply_token(&self, token: &str) {
        self.replies.remove(token);
    }

    /// A `/queue` SEND: where [`Peers::enqueue`] puts it (the local queue on a single node; in
    /// cluster mode the queue's shared stream, from which any node with a consumer takes it).
    pub fn send_to_queue(&self, name: &str, message: Arc<Message>) -> Result<(), StompError> {
        self.peers
            .enqueue(&self.queues, name, message)
            .map_err(|full| {
                crate::metrics::get()
                    .delivery
                    .dropped(crate::metrics::delivery::DropReason::QueueFull);
                StompError::QueueFull(name.to_string(), full)
            })
    }

    /// Delivers a reply to the session owning `token`; a reply for a session that has gone is
    /// dropped, as the request it answers died with that session.
    pub fn send_reply(&self, token: &str, name: &str, message: Arc<Message>) {
        let session = self.replies.get(token).map(|s| Arc::clone(s.value()));
        if let Some(session) = session {
            let delivery = Delivery {
                target: Target::TempQueue(Arc::from(name)),
                message,
                redelivered: false,
                queue: None,
            };
            let _ = session.outbox.try_push(Outbound::Deliver(delivery));
        }
    }
}

// Subscribing and publishing: every subscription change is also interest told to the peers,
// every publish reaches local sessions directly and the peers through `Peers`; what peers send
// back is delivered to local sessions only (`deliver_*_from_peer`), never published again, so
// nothing loops.
impl Router {
    /// How other nodes must route a `/topic` subscription to `name` (exact or pattern).
    fn topic_route<'a>(&self, name: &'a str) -> Route<'a> {
        if self.topics.is_pattern(name) {
            Route::Pattern(name)
        } else {
            Route::Topic(name)
        }
    }

    pub fn subscribe_topic(&self, name: &str, subscriber: Subscriber) {
        self.topics.subscribe(name, subscriber);
        self.peers.interest_added(self.topic_route(name));
    }

    /// A `/topic` subscription resuming after `from`: replays the messages the topic's
    /// history holds after it, then delivers live. Done(true) when the replay is complete (it
    /// was `recovered`); Done(false) when the history cannot tell (another epoch, a position
    /// older than it holds, a topic or a wildcard without history): then it only delivers
    /// live. Pending when the history is shared by nodes: the gate answers later.
    pub fn subscribe_topic_from(
        &self,
        name: &str,
        subscriber: Subscriber,
        from: &Position,
    ) -> Resumed {
        if self.topics.is_pattern(name) {
            self.subscribe_topic(name, subscriber);
            return Resumed::Done(false);
        }
        if let Some((shared, rule)) = self.history.shared_for(name) {
            // Registered before the replay is read: whatever is published from now on is
            // either in the replay or held by the gate (which drops what is in both).
            let gate = Gate::new(subscriber.clone(), from.clone());
            let gated = Subscriber {
                gate: Some(Arc::clone(&gate) as _),
                ..subscriber
            };
            self.topics.subscribe(name, gated);
            self.peers.interest_added(self.topic_route(name));
            shared.replay(name, from, rule, Arc::clone(&gate));
            return Resumed::Pending(gate);
        }
        // Under the ring's lock, which every publish to `name` takes to fan out: nothing can
        // be published between the replay's end and the live subscription's start.
        let recovered = self.history.with_ring(name, |ring| {
            let replay = ring.and_then(|ring| ring.since(from, std::time::Instant::now()));
            let principal = subscriber.session.principal.name();
            for entry in replay.iter().flatten() {
                if admits(entry.members.as_deref(), principal) {
                    // A full outbox is the slow-consumer policy's, as for a live message.
                    let _ = subscriber
                        .session
                        .outbox
                        .try_push(delivery(&subscriber, &entry.message));
                }
            }
            self.topics.subscribe(name, subscriber);
            replay.is_some()
        });
        self.peers.interest_added(self.topic_route(name));
        Resumed::Done(recovered)
    }

    pub fn unsubscribe_topic(&self, name: &str, session: u64, subscription: &str) {
        self.topics.unsubscribe(name, session, subscription);
        self.peers.interest_removed(self.topic_route(name));
    }

    /// `user`'s subscription to `/user/queue/<name>`, keyed `key` ([`Router::user_key`]).
    pub fn subscribe_user(&self, user: &str, key: &str, subscriber: Subscriber) {
        self.users.subscribe(key, subscriber);
        self.peers.interest_added(Route::User(user));
    }

    pub fn unsubscribe_user(&self, key: &str, session: u64, subscription: &str) {
        self.users.unsubscribe(key, session, subscription);
        if let Some((user, _)) = key.split_once('/') {
            self.peers.interest_removed(Route::User(user));
        }
    }

    /// Routes a message sent to `destination`, as a SEND does (the publish API too): a
    /// topic, a queue, a user's queue (`own` is the sender, for `/user/queue/...`), a reply.
    /// `/app` is the application's and `/temp-queue` a name only a `reply-to` may use: both
    /// are refused here.
    pub fn route(
        &self,
        destination: Destination,
        message: Arc<Message>,
        own: &str,
    ) -> Result<FanOut, StompError> {
        Ok(match destination {
            Destination::Topic(name) => self.publish_topic(&name, &message),
            Destination::Queue(name) => {
                self.send_to_queue(&name, message)?;
                FanOut::default()
            }
            Destination::User { user, name } => {
                let user = user.as_deref().unwrap_or(own);
                self.publish_users(&[user.to_string()], &name, &message, Priority::Normal)
            }
            Destination::ReplyQueue { token, name } => {
                self.send_reply(&token, &name, message);
                FanOut::default()
            }
            Destination::TempQueue(_) => {
                return Err(StompError::InvalidHeader(
                    "destination",
                    "a /temp-queue/ is named in reply-to; replies go to the /reply-queue/ \
                     destination the requester's reply-to was rewritten to"
                        .into(),
                ));
            }
            Destination::App(_) => {
                return Err(StompError::UnknownDestination(
                    message.destination.to_string(),
                ));
            }
        })
    }

    /// A `/topic/<name>` publish: local subscribers now, other nodes through the peers.
    pub fn publish_topic(&self, name: &str, message: &Arc<Message>) -> FanOut {
        self.publish_room(name, message, None)
    }

    /// A publisher's consecutive messages to `/topic/<name>` (the SENDs of one socket read), in
    /// order. Without history they are fanned out as one run (each subscription's outbox takes
    /// them in one push), then sent to the peers one by one; a topic with history positions
    /// each message under its ring's lock (or the shared history does), so those go one by one.
    pub fn publish_topic_run(&self, name: &str, messages: Vec<Arc<Message>>) -> FanOut {
        if messages.len() < 2 || self.history.keeps(name) {
            let mut total = FanOut::default();
            for message in &messages {
                total.add(self.publish_topic(name, message));
            }
            return total;
        }
        let run = Arc::new(Run::new(messages));
        let fan_out = fan_out_run(&self.topics, name, &run);
        for message in &run.messages {
            self.peers.publish_topic(name, message, None);
        }
        fan_out
    }

    /// A chat room copy on `/topic/<name>`, delivered only to sessions of `members` (`None`:
    /// everyone, a plain topic publish).
    pub fn publish_room(
        &self,
        name: &str,
        message: &Arc<Message>,
        members: Option<&[String]>,
    ) -> FanOut {
        if let Some(fan_out) = self.publish_shared(name, message, members) {
            return fan_out;
        }
        let (fan_out, message) = self.deliver_room(name, message, members);
        self.peers.publish_topic(name, &message, members);
        fan_out
    }

    /// Whether nodes share `/topic/<name>`'s history (cluster mode, a history rule for it).
    pub fn shares_history(&self, name: &str) -> bool {
        self.history.shared_for(name).is_some()
    }

    /// A publish to a topic whose history the nodes share: the history positions the copy and
    /// delivers it everywhere, this node included. `None` when the topic has no shared history.
    pub fn publish_shared(
        &self,
        name: &str,
        message: &Arc<Message>,
        members: Option<&[String]>,
    ) -> Option<FanOut> {
        let (shared, rule) = self.history.shared_for(name)?;
        let pressed = shared.append(shared::Publish {
            name,
            message,
            members,
            rule,
        });
        Some(FanOut {
            delivered: 0,
            pressed,
        })
    }

    /// [`Router::publish_room`] to this node's sessions only; returns the copy as the peers
    /// must get it (with its history offset, when the topic keeps one here).
    pub fn deliver_room(
        &self,
        name: &str,
        message: &Arc<Message>,
        members: Option<&[String]>,
    ) -> (FanOut, Arc<Message>) {
        // A topic with history: the offset is assigned and the copy fanned out under the
        // ring's lock, so a resuming SUBSCRIBE sees each message in its replay or live.
        let delivered = self.history.with_ring(name, |ring| match ring {
            Some(ring) => {
                let message = ring.append(message, members, std::time::Instant::now());
                (
                    self.deliver_topic(name, &message, Select::All, members),
                    message,
                )
            }
            None => (
                self.deliver_topic(name, message, Select::All, members),
                Arc::clone(message),
            ),
        });
        self.history.enforce();
        delivered
    }

    /// A delivery to `/user/<user>/queue/<queue>` for each of `users`: local sessions now,
    /// other nodes through the peers.
    pub fn publish_users(
        &self,
        users: &[String],
        queue: &str,
        message: &Arc<Message>,
        priority: Priority,
    ) -> FanOut {
        let total = self.deliver_users(users, queue, message, priority);
        self.peers.publish_users(users, queue, message, priority);
        total
    }

    /// `/user/<user>/queue/<queue>` for each of `users`, to this node's sessions only.
    pub fn deliver_users(
        &self,
        users: &[String],
        queue: &str,
        message: &Arc<Message>,
        priority: Priority,
    ) -> FanOut {
        let mut total = FanOut::default();
        for user in users {
            total.add(self.deliver_user(user, queue, message, Select::All, priority));
        }
        total
    }

    /// The other nodes, for copies sent apart from their local delivery (a chat message's,
    /// held back until it is durable: `chat/to_peers.rs`).
    pub fn peers(&self) -> &dyn Peers {
        self.peers.as_ref()
    }

    /// Resolves once every publish so far has left for the other nodes (see
    /// [`Peers::flushed`]).
    pub fn flushed(&self) -> Option<tokio::sync::oneshot::Receiver<()>> {
        self.peers.flushed()
    }

    /// A `/topic/<name>` copy (a room copy when `members` is set) from another node, to the
    /// local subscriptions `select` picks.
    pub fn deliver_topic_from_peer(
        &self,
        name: &str,
        message: &Arc<Message>,
        select: Select<'_>,
        members: Option<&[String]>,
    ) -> FanOut {
        self.deliver_topic(name, message, select, members)
    }

    /// A `/user/<user>/queue/<queue>` delivery from another node, to this node's sessions of
    /// `user`.
    pub fn deliver_user_from_peer(
        &self,
        user: &str,
        queue: &str,
        message: &Arc<Message>,
        priority: Priority,
    ) -> FanOut {
        self.deliver_user(user, queue, message, Select::Exact, priority)
    }

    fn deliver_topic(
        &self,
        name: &str,
        message: &Arc<Message>,
        select: Select<'_>,
        members: Option<&[String]>,
    ) -> FanOut {
        fan_out(
            &self.topics,
            name,
            message,
            select,
            Priority::Normal,
            |principal| admits(members, principal),
        )
    }

    fn deliver_user(
        &self,
        user: &str,
        queue: &str,
        message: &Arc<Message>,
        select: Select<'_>,
        priority: Priority,
    ) -> FanOut {
        let key = Router::user_key(user, queue);
        fan_out(&self.users, &key, message, select, priority, |_| true)
    }
}

#[cfg(test)]
mod tests;
