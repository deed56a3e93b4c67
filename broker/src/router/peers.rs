//! The router's seam to other nodes. The router knows only this node's subscriptions; what must
//! cross nodes (interest in a destination, a publish, a `/queue` message and its consumption)
//! goes through [`Peers`], which cluster mode implements over Redis (`cluster/peers.rs`). A
//! single node has no peers: [`Alone`] keeps its queues local and sends nothing anywhere.

use std::sync::Arc;

use super::fanout::Priority;
use super::queue::{Consumption, QueueFull, Queues};
use crate::message::Message;

/// What a local subscription listens to, as other nodes must route it here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    /// Exactly `/topic/<name>`.
    Topic(&'a str),
    /// A wildcard `/topic` pattern.
    Pattern(&'a str),
    /// Some `/user/<user>/queue/*` of this user.
    User(&'a str),
}

/// The other nodes, as the router sees them. Every method returns at once: none may wait on the
/// network (the router never waits, see `outbox.rs`). As [`Consumption`] they hear what local
/// queues' consumers consumed.
pub trait Peers: Consumption {
    /// A local subscription to `route` began (one call per subscription; counted by peers).
    fn interest_added(&self, route: Route<'_>);

    /// A local subscription to `route` ended.
    fn interest_removed(&self, route: Route<'_>);

    /// A `/topic/<name>` publish already delivered locally, for other nodes' subscribers; a
    /// chat room copy when `members` is set (delivered only to those members' sessions).
    fn publish_topic(&self, name: &str, message: &Message, members: Option<&[String]>);

    /// A delivery to `/user/<user>/queue/<queue>` for each of `users`, already delivered
    /// locally, for their sessions on other nodes.
    fn publish_users(&self, users: &[String], queue: &str, message: &Message, priority: Priority);

    /// [`Peers::publish_users`] (normal priority) for `users`, the members of the room `room`
    /// (a GROUP conversation): peers may carry it as one message for the room rather than one per
    /// user (cluster mode: the room's channel, heard by every node with a member online).
    fn publish_room_users(&self, room: &str, users: &[String], queue: &str, message: &Message) {
        let _ = room;
        self.publish_users(users, queue, message, Priority::Normal);
    }

    /// A `/queue` SEND: into wherever this node's queues (`local`) take their messages from
    /// (the local queue itself, or a queue shared by every node's consumers).
    fn enqueue(&self, local: &Queues, queue: &str, message: Arc<Message>) -> Result<(), QueueFull>;

    /// This node removed its idle, empty `queue` (`--queue-idle-expiry`): whatever is shared
    /// of it may go too, if no other node uses it.
    fn queue_expired(&self, queue: &str);

    /// Resolves once everything handed to the peers before this call has left for them, so
    /// an answer that promises delivery (a chat RECEIPT) can wait for it: a node that dies
    /// after answering must not take other nodes' copies with it. `None`: nothing to wait for
    /// (no peers, or they cannot be reached now).
    fn flushed(&self) -> Option<tokio::sync::oneshot::Receiver<()>> {
        None
    }
}

/// No other nodes (single-node mode): nothing crosses, every queue is this node's own.
#[derive(Debug, Clone, Copy, Default)]
pub struct Alone;

impl Peers for Alone {
    fn interest_added(&self, _: Route<'_>) {}

    fn interest_removed(&self, _: Route<'_>) {}

    fn publish_topic(&self, _: &str, _: &Message, _: Option<&[String]>) {}

    fn publish_users(&self, _: &[String], _: &str, _: &Message, _: Priority) {}

    fn enqueue(&self, local: &Queues, queue: &str, message: Arc<Message>) -> Result<(), QueueFull> {
        local.get(queue)?.enqueue(message)
    }

    fn queue_expired(&self, _: &str) {}
}

impl Consumption for Alone {
    fn consumed(&self, _: &str, _: &[u64]) {}
}
