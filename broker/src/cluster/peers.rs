//! The router's peers over Redis: local interest becomes channel subscriptions, publishes
//! become envelopes on the channels other nodes listen to, and `/queue` messages go through the
//! queue's shared stream (see `stream.rs`).

use std::sync::Arc;

use bytes::Bytes;
use tracing::warn;

use super::Cluster;
use super::channel::Channel;
use super::envelope::{Envelope, Kind};
use crate::message::Message;
use crate::router::queue::{Consumption, QueueFull, Queues};
use crate::router::{Peers, Priority, Route};

impl From<Route<'_>> for Channel {
    fn from(route: Route<'_>) -> Self {
        match route {
            Route::Topic(name) => Channel::Topic(name.to_string()),
            Route::Pattern(pattern) => Channel::glob_for(pattern),
            Route::User(user) => Channel::User(user.to_string()),
        }
    }
}

impl Peers for Cluster {
    fn interest_added(&self, route: Route<'_>) {
        self.interest().add(route.into());
        if let Route::User(user) = route {
            self.rooms.user_subscribed(self.interest(), user);
        }
    }

    fn interest_removed(&self, route: Route<'_>) {
        self.interest().remove(&route.into());
        if let Route::User(user) = route {
            self.rooms.user_unsubscribed(self.interest(), user);
        }
    }

    fn publish_topic(&self, name: &str, message: &Message, members: Option<&[String]>) {
        let mut envelope = Envelope::of(self.node_id(), Kind::Topic, name, message, false);
        if let Some(members) = members {
            envelope.kind = Kind::Room;
            envelope.members = members.to_vec();
        }
        self.publish(&Channel::Topic(name.to_string()), &envelope);
    }

    /// One encoding shared by every user's channel.
    fn publish_users(&self, users: &[String], queue: &str, message: &Message, priority: Priority) {
        let droppable = priority == Priority::Droppable;
        let envelope = Envelope::of(self.node_id(), Kind::User, queue, message, droppable);
        match envelope.encode() {
            Ok(bytes) => {
                for user in users {
                    self.publish_bytes(&Channel::User(user.clone()), Bytes::clone(&bytes));
                }
            }
            Err(e) => warn!(error = %e, "user delivery not sent to other nodes"),
        }
    }

    /// One envelope on the room's channel, listing the members: each node that listens
    /// delivers it to those of them with sessions there.
    fn publish_room_users(&self, room: &str, users: &[String], queue: &str, message: &Message) {
        let mut envelope = Envelope::of(self.node_id(), Kind::User, queue, message, false);
        envelope.members = users.to_vec();
        self.publish(&Channel::Room(room.to_string()), &envelope);
    }

    /// Appended to the queue's stream, where any node with a consumer takes it (competing
    /// consumers cluster-wide); the local queue is fed from there by the stream reader. The
    /// local queue is made (or touched) all the same: it counts against `--max-queues`, so a
    /// client cannot make unbounded stream names through this node, and its expiry is what
    /// removes the stream once it is idle and empty.
    fn enqueue(&self, local: &Queues, queue: &str, message: Arc<Message>) -> Result<(), QueueFull> {
        local.get(queue)?.touch();
        self.append_to_queue(queue, &message);
        Ok(())
    }

    fn queue_expired(&self, queue: &str) {
        self.streams.expired(queue);
    }

    fn flushed(&self) -> Option<tokio::sync::oneshot::Receiver<()>> {
        Cluster::flushed(self)
    }
}

impl Consumption for Cluster {
    /// Acknowledges their stream entries.
    fn consumed(&self, _: &str, ids: &[u64]) {
        self.streams.consumed(ids);
    }
}
