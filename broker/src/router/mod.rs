//! The destination router: maps a destination onto the sessions that should receive it.
//!
//! It owns the subscription tables and queues and never waits on a session: every hand-off is
//! a non-blocking push into a bounded outbox (see `outbox.rs`).

pub mod queue;
mod remote;
pub mod topic;

use std::sync::Arc;

use dashmap::DashMap;

use crate::cluster::Cluster;
use crate::error::StompError;
use crate::message::{Delivery, Message, Target};
use crate::outbox::{Outbound, Pressure};
use crate::session::handle::SessionHandle;
use queue::Queue;
use topic::{Subscriber, TopicTable};

/// What a fan-out did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FanOut {
    /// Outboxes that took the message.
    pub delivered: usize,
    /// Some receiving outbox is past half full: the publisher should slow down.
    pub pressed: bool,
}

/// How a fan-out treats a full outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// Counts against the slow-consumer policy.
    Normal,
    /// Worthless late (typing indicators): dropped once an outbox is half full.
    Droppable,
}

#[derive(Debug)]
pub struct Router {
    /// `/topic/<name>` subscriptions, wildcards allowed.
    pub topics: TopicTable,
    /// `/user/<user>/queue/<name>` subscriptions, keyed `<user>/<name>`.
    pub users: TopicTable,
    queues: DashMap<String, Arc<Queue>>,
    /// `/temp-queue` reply tokens to the session that owns them.
    replies: DashMap<String, Arc<SessionHandle>>,
    /// Every connected session (for shutdown and, later, metrics).
    sessions: DashMap<u64, Arc<SessionHandle>>,
    queue_max_messages: usize,
    /// The other nodes, in cluster mode (see `remote.rs`).
    cluster: Option<Arc<Cluster>>,
}

/// Which subscriptions of a table a fan-out reaches.
#[derive(Debug, Clone, Copy)]
pub enum Select<'a> {
    /// Exact and wildcard subscriptions: a local publish.
    All,
    /// Exact subscriptions only: a copy that came on a topic's own Redis channel.
    Exact,
    /// Wildcard subscriptions whose glob is this one: a copy that came through that glob.
    Patterns(&'a str),
}

impl Router {
    pub fn new(queue_max_messages: usize, cluster: Option<Arc<Cluster>>) -> Self {
        Self {
            topics: TopicTable::new(true),
            users: TopicTable::new(false),
            queues: DashMap::new(),
            replies: DashMap::new(),
            sessions: DashMap::new(),
            queue_max_messages,
            cluster,
        }
    }

    pub fn cluster(&self) -> Option<&Arc<Cluster>> {
        self.cluster.as_ref()
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

    /// The queue named `name`, created on first use.
    pub fn queue(&self, name: &str) -> Arc<Queue> {
        if let Some(q) = self.queues.get(name) {
            return Arc::clone(q.value());
        }
        let queue = self.queues.entry(name.to_string()).or_insert_with(|| {
            let hook = self.cluster.as_ref().map(|c| c.consumed_hook());
            Arc::new(Queue::new(name, self.queue_max_messages, hook))
        });
        Arc::clone(queue.value())
    }

    /// Every queue this node has seen (the cluster's stream reader walks them).
    pub fn local_queues(&self) -> Vec<Arc<Queue>> {
        self.queues.iter().map(|q| Arc::clone(q.value())).collect()
    }

    pub fn add_reply_token(&self, token: String, session: Arc<SessionHandle>) {
        self.replies.insert(token, session);
    }

    pub fn remove_reply_token(&self, token: &str) {
        self.replies.remove(token);
    }

    /// Fans `message` out to local sessions only: the subscriptions of `table` matching `name`
    /// that `select` picks, of principals `admit` accepts; returns how many outboxes took it.
    /// (Publishing, which also reaches other nodes, is in `remote.rs`.)
    pub fn fan_out_local(
        &self,
        table: &TopicTable,
        name: &str,
        message: &Arc<Message>,
        select: Select<'_>,
        priority: Priority,
        admit: impl Fn(&str) -> bool,
    ) -> FanOut {
        let mut outcome = FanOut::default();
        let push = |sub: &Subscriber| {
            if !admit(sub.session.principal.name()) {
                return;
            }
            let item = Outbound::Deliver(Delivery {
                target: Target::Subscription(Arc::clone(&sub.subscription)),
                message: Arc::clone(message),
                redelivered: false,
                queue: None,
            });
            match priority {
                Priority::Normal => {
                    if let Ok(pressure) = sub.session.outbox.try_push(item) {
                        outcome.delivered += 1;
                        outcome.pressed |= pressure == Pressure::High;
                    }
                }
                Priority::Droppable => {
                    outcome.delivered += usize::from(sub.session.outbox.try_push_droppable(item));
                }
            }
        };
        let mut push = push;
        match select {
            Select::All => table.for_each_match(name, &mut push),
            Select::Exact => table.for_each_exact(name, &mut push),
            Select::Patterns(glob) => table.for_each_pattern(
                name,
                |pattern| crate::cluster::Channel::glob_for(pattern).to_string() == glob,
                &mut push,
            ),
        }
        outcome
    }

    /// A `/queue` SEND: into the local queue, or in cluster mode into the queue's shared
    /// Redis stream, from which any node with a consumer takes it.
    pub fn send_to_queue(&self, name: &str, message: Arc<Message>) -> Result<(), StompError> {
        if let Some(cluster) = &self.cluster {
            cluster.append_to_queue(name, &message);
            return Ok(());
        }
        self.queue(name)
            .enqueue(message)
            .map_err(|full| StompError::QueueFull(name.to_string(), full.0))
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
