//! The copies of a chat effect meant for other nodes, split from its local delivery so they
//! can be sent later: a message accepted before it is durable (Kafka mode) reaches this
//! node's sessions at once, and other nodes only once Kafka has acknowledged it
//! (`sequencer::finish`).
//!
//! Why other nodes wait: a member reconnecting to another node syncs, and the sync reads
//! PostgreSQL behind a marker round (chat-store `streamed/barrier.rs`) that covers every
//! record Kafka appended before the markers. A copy published to Redis before the member's
//! new node listened, for a record Kafka appended only after the markers, would be in
//! neither the live stream nor the replay: lost for that member. Published after the ack, a
//! copy the new node missed belongs to a record appended before its markers, so the replay
//! has it (docs/architecture.md, "Kafka mode in a cluster").

use std::sync::Arc;

use crate::message::Message;
use crate::router::{Priority, Router};

/// What an effect still has to send to other nodes, its local delivery done.
#[derive(Debug)]
pub enum ToPeers {
    /// `/user/<user>/queue/<queue>` for each of `users`.
    Users {
        users: Vec<String>,
        queue: &'static str,
        message: Arc<Message>,
        priority: Priority,
    },
    /// A GROUP's copies: one for the room (`members`), one each for members who joined
    /// within `--room-join-grace` (`joined`, whose nodes may not listen to the room yet).
    Room {
        room: String,
        members: Vec<String>,
        joined: Vec<String>,
        queue: &'static str,
        message: Arc<Message>,
    },
    /// A room-style `/topic/<name>` copy for the sessions of `members`.
    Topic {
        name: String,
        members: Vec<String>,
        message: Arc<Message>,
    },
    /// The same on a topic whose history the nodes share: not delivered here yet, since the
    /// shared history positions the copy and delivers it on every node, this one included.
    SharedTopic {
        name: String,
        members: Vec<String>,
        message: Arc<Message>,
    },
}

impl ToPeers {
    /// Hands the copies to the peers (they return at once; `Router::flushed` says when the
    /// copies have left).
    pub fn send(self, router: &Router) {
        let peers = router.peers();
        match self {
            ToPeers::Users {
                users,
                queue,
                message,
                priority,
            } => peers.publish_users(&users, queue, &message, priority),
            ToPeers::Room {
                room,
                members,
                joined,
                queue,
                message,
            } => {
                if !members.is_empty() {
                    peers.publish_room_users(&room, &members, queue, &message);
                }
                if !joined.is_empty() {
                    peers.publish_users(&joined, queue, &message, Priority::Normal);
                }
            }
            ToPeers::Topic {
                name,
                members,
                message,
            } => peers.publish_topic(&name, &message, Some(&members)),
            ToPeers::SharedTopic {
                name,
                members,
                message,
            } => {
                router.publish_room(&name, &message, Some(&members));
            }
        }
    }
}
