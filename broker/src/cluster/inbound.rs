//! What a node does with a message from Redis: decode the envelope, drop its own (no echo),
//! and deliver to local sessions only — never publish again, so nothing loops.
//!
//! A message matched by both an exact channel and a glob arrives twice from Redis (`message`
//! and `pmessage`); each copy reaches only the subscriptions it stands for (exact ones for the
//! channel, patterns whose glob is the one that matched), so no session sees it twice.

use std::sync::Arc;

use chat_store::Conversation;
use redis::Msg;
use tracing::debug;

use super::channel::{CONTROL, USER};
use super::envelope::{Envelope, Kind};
use super::health::Health;
use crate::chat::ChatCore;
use crate::router::{Priority, Router, Select};

pub struct Inbound {
    pub node_id: u16,
    pub router: Arc<Router>,
    pub chat: Arc<ChatCore>,
    pub health: Arc<Health>,
}

impl Inbound {
    pub fn handle(&self, msg: &Msg) {
        let envelope = match Envelope::try_from(msg.get_payload_bytes()) {
            Ok(envelope) => envelope,
            Err(e) => {
                self.health.malformed();
                debug!(channel = msg.get_channel_name(), error = %e, "malformed envelope dropped");
                return;
            }
        };
        if envelope.origin == self.node_id {
            return;
        }
        self.health.received();
        let channel = msg.get_channel_name();
        let glob: Option<String> = msg.get_pattern().ok().flatten();
        let select = match &glob {
            Some(glob) => Select::Patterns(glob),
            None => Select::Exact,
        };
        match envelope.kind {
            Kind::Topic | Kind::Room => {
                // A room copy goes to its members' sessions only; a topic to every subscriber.
                let message = envelope.message();
                let members = &envelope.members;
                let room = envelope.kind == Kind::Room;
                self.router.fan_out_local(
                    &self.router.topics,
                    &envelope.route,
                    &message,
                    select,
                    Priority::Normal,
                    |principal| !room || members.iter().any(|m| m == principal),
                );
            }
            Kind::User => {
                let Some(user) = channel.strip_prefix(USER) else {
                    return;
                };
                let message = envelope.message();
                let priority = if envelope.droppable {
                    Priority::Droppable
                } else {
                    Priority::Normal
                };
                let key = Router::user_key(user, &envelope.route);
                self.router.fan_out_local(
                    &self.router.users,
                    &key,
                    &message,
                    Select::Exact,
                    priority,
                    |_| true,
                );
            }
            Kind::Conversation if channel == CONTROL => {
                match serde_json::from_slice::<Conversation>(&envelope.body) {
                    Ok(conversation) => {
                        self.chat.remember(conversation);
                    }
                    Err(e) => {
                        self.health.malformed();
                        debug!(error = %e, "malformed conversation snapshot dropped");
                    }
                }
            }
            Kind::Conversation | Kind::Queue => {}
        }
    }
}
