//! What a chat operation does to the outside world once it has succeeded, applied in order by
//! the sequencer: deliveries to users and sessions, RECEIPTs, the push seam.

use std::sync::Arc;

use bytes::Bytes;
use chat_store::{Sequenced, StoredMessage};
use stomp_codec::{Command, Frame, Headers};
use tokio::sync::broadcast;

use super::model::MessageOut;
use super::reply_queue::ReplyQueue;
use super::to_peers::ToPeers;
use crate::handle::SessionHandle;
use crate::message::{Delivery, Message, Target};
use crate::outbox::Outbound;
use crate::router::{Priority, Router};

impl Effect {
    /// A reply to the session that asked, or (HTTP API: no session) to every session of the
    /// user.
    pub fn reply(
        session: Option<Arc<SessionHandle>>,
        user: &str,
        queue: ReplyQueue,
        payload: Payload,
    ) -> Effect {
        match session {
            Some(session) => Effect::ToSession {
                session,
                queue,
                payload,
            },
            None => Effect::ToUser {
                users: vec![user.to_string()],
                queue,
                payload,
                priority: Priority::Normal,
            },
        }
    }
}

/// A chat MESSAGE body with the id it carries in the STOMP `message-id` header.
#[derive(Debug, Clone)]
pub struct Payload {
    pub id: u64,
    pub json: Bytes,
    /// A chat message (its ACK means DELIVERED).
    pub chat: bool,
}

impl Payload {
    /// A stored message as members receive it.
    pub fn message(stored: &StoredMessage) -> Self {
        Payload {
            id: stored.message_id,
            json: Bytes::from(serde_json::to_vec(&MessageOut::from(stored)).unwrap_or_default()),
            chat: true,
        }
    }

    /// A stored message with its position in its conversation (a sync replay).
    pub fn sequenced(stored: &Sequenced) -> Self {
        Self::placed(&stored.message, Some(stored.seq))
    }

    /// A stored message and, where the store gave it already, its position.
    pub fn placed(stored: &StoredMessage, seq: Option<u64>) -> Self {
        let out = MessageOut {
            seq,
            ..MessageOut::from(stored)
        };
        Payload {
            id: stored.message_id,
            json: Bytes::from(serde_json::to_vec(&out).unwrap_or_default()),
            chat: true,
        }
    }
}

#[derive(Debug)]
pub enum Effect {
    /// An event for every session of each of `users` subscribed to `/user/queue/<queue>`
    /// (one shared message, encoded once).
    ToUser {
        users: Vec<String>,
        queue: ReplyQueue,
        payload: Payload,
        priority: Priority,
    },
    /// [`Effect::ToUser`] for the members of a GROUP conversation (`room`): other nodes get
    /// one copy for the room, except for members who joined within `--room-join-grace`
    /// (`joined`), who get their own, since their nodes may not listen to the room yet.
    ToRoomMembers {
        room: String,
        members: Vec<String>,
        joined: Vec<String>,
        queue: ReplyQueue,
        payload: Payload,
    },
    /// A reply to the one session that asked.
    ToSession {
        session: Arc<SessionHandle>,
        queue: ReplyQueue,
        payload: Payload,
    },
    /// A room-style copy on `/topic/<name>`, for the sessions of `members` only: membership is
    /// checked at delivery, so a removed member's standing subscription (or a wildcard that
    /// happens to match) hears nothing.
    ToTopic {
        name: String,
        members: Vec<String>,
        payload: Payload,
    },
    /// A frame for one session (RECEIPT after storage).
    Frame {
        session: Arc<SessionHandle>,
        frame: Frame,
    },
    /// A recipient was offline when a message was stored: the seam push notifications hang on.
    Offline(OfflineEvent),
}

fn message(destination: String, payload: &Payload) -> Arc<Message> {
    let mut headers = Headers::with_capacity(1);
    headers.push("content-type", "application/json");
    let mut message = Message::new(
        payload.id,
        Arc::from(destination),
        &headers,
        payload.json.clone(),
    );
    // The chat hears a recipient's ACK of a chat message (`Application::settled`).
    message.app_ack = payload.chat;
    Arc::new(message)
}

pub fn receipt(receipt_id: &str, message_id: Option<u64>) -> Frame {
    let mut frame = Frame::new(Command::Receipt).header("receipt-id", receipt_id);
    if let Some(id) = message_id {
        frame.headers.push("message-id", id.to_string());
    }
    frame
}

impl Effect {
    /// Whether it reaches other nodes too (through the router's peers).
    pub fn crosses_nodes(&self) -> bool {
        matches!(
            self,
            Effect::ToUser { .. } | Effect::ToRoomMembers { .. } | Effect::ToTopic { .. }
        )
    }

    pub fn apply(self, router: &Router, offline_tx: &broadcast::Sender<OfflineEvent>) {
        if let Some(copies) = self.apply_here(router, offline_tx) {
            copies.send(router);
        }
    }

    /// Applies the effect to this node (its sessions, the push seam) and returns the copies
    /// for other nodes, not sent yet: [`ToPeers::send`] sends them, now or once the message
    /// is durable (`sequencer::finish`).
    pub fn apply_here(
        self,
        router: &Router,
        offline_tx: &broadcast::Sender<OfflineEvent>,
    ) -> Option<ToPeers> {
        match self {
            Effect::ToUser {
                users,
                queue,
                payload,
                priority,
            } => {
                let queue = queue.name();
                let message = message(format!("/user/queue/{queue}"), &payload);
                router.deliver_users(&users, queue, &message, priority);
                Some(ToPeers::Users {
                    users,
                    queue,
                    message,
                    priority,
                })
            }
            Effect::ToRoomMembers {
                room,
                members,
                joined,
                queue,
                payload,
            } => {
                let queue = queue.name();
                let message = message(format!("/user/queue/{queue}"), &payload);
                router.deliver_users(&members, queue, &message, Priority::Normal);
                router.deliver_users(&joined, queue, &message, Priority::Normal);
                Some(ToPeers::Room {
                    room,
                    members,
                    joined,
                    queue,
                    message,
                })
            }
            Effect::ToSession {
                session,
                queue,
                payload,
            } => {
                let user = session.principal.name().to_string();
                let delivery = Delivery {
                    target: Target::User(Arc::from(queue.name())),
                    message: message(format!("/user/{user}/queue/{}", queue.name()), &payload),
                    redelivered: false,
                    queue: None,
                };
                let _ = session.outbox.try_push(Outbound::Deliver(delivery));
                None
            }
            Effect::ToTopic {
                name,
                members,
                payload,
            } => {
                let message = message(format!("/topic/{name}"), &payload);
                if router.shares_history(&name) {
                    return Some(ToPeers::SharedTopic {
                        name,
                        members,
                        message,
                    });
                }
                let (_, message) = router.deliver_room(&name, &message, Some(&members));
                Some(ToPeers::Topic {
                    name,
                    members,
                    message,
                })
            }
            Effect::Frame { session, frame } => {
                let _ = session.outbox.try_push(Outbound::Frame(frame));
                None
            }
            Effect::Offline(event) => {
                tracing::debug!(user = %event.user, message_id = event.message_id,
                    "recipient offline: push notification event");
                // No receiver is fine: push is off, or not started yet.
                let _ = offline_tx.send(event);
                None
            }
        }
    }
}

/// Emitted for every recipient that was offline when a message was stored; the push
/// notification service consumes these (`Chat::offline_events`, `crate::push`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfflineEvent {
    pub user: String,
    pub message_id: u64,
    pub conversation_id: String,
    pub sender_id: String,
    /// The group's name; `None` for a one-on-one conversation.
    pub group_name: Option<String>,
    /// The message's content (shown only with `--push-preview full`), shared by every
    /// offline recipient of the message.
    pub content: Arc<str>,
}
