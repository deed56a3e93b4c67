//! What a node does with a message from Redis: decode the envelope, drop its own (no echo;
//! except a shared topic history's positioned copies, never delivered before), and deliver
//! to local sessions only — never publish again, so nothing loops.
//!
//! A message matched by both an exact channel and a glob arrives twice from Redis (`message`
//! and `pmessage`); each copy reaches only the subscriptions it stands for (exact ones for the
//! channel, patterns whose glob is the one that matched), so no session sees it twice.

use std::sync::Arc;

use chat_store::Conversation;
use redis::Msg;
use tracing::debug;

use super::channel::{CONTROL, Channel, ROOM, USER};
use super::envelope::Kind;
use super::health::Health;
use super::interest::Interest;
use super::positioned::Payload;
use super::rooms::Rooms;
use crate::router::{Priority, Router, Select};

/// Takes the conversation snapshots other nodes send when they change a conversation (the
/// wiring hands them to the chat's cache).
pub type ConversationListener = Box<dyn Fn(Conversation) + Send + Sync>;

pub struct Inbound {
    pub node_id: u16,
    pub router: Arc<Router>,
    pub conversations: ConversationListener,
    pub health: Arc<Health>,
    /// Rooms follow membership changes other nodes announce.
    pub interest: Arc<Interest>,
    pub rooms: Arc<Rooms>,
}

impl Inbound {
    pub fn handle(&self, msg: &Msg) {
        let payload = match Payload::try_from(msg.get_payload_bytes()) {
            Ok(payload) => payload,
            Err(e) => {
                self.health.malformed();
                debug!(channel = msg.get_channel_name(), error = %e, "malformed envelope dropped");
                return;
            }
        };
        let envelope = &payload.envelope;
        // A positioned copy (shared topic history) was not delivered here before: its
        // position comes from Redis, so the publishing node hears it back like the others.
        if envelope.origin == self.node_id && payload.position.is_none() {
            return;
        }
        self.health.received();
        if envelope.published_us > 0 {
            // Wall clocks of two hosts: a receiver behind the sender reads 0, never negative.
            let took = crate::clock::now_us().saturating_sub(envelope.published_us);
            crate::metrics::get()
                .cluster
                .propagation
                .observe(took as f64 / 1e6);
        }
        let channel = msg.get_channel_name();
        let glob: Option<String> = msg.get_pattern().ok().flatten();
        // A copy that came through a glob is for the patterns that glob stands for.
        let through_glob = |pattern: &str| {
            glob.as_deref()
                .is_some_and(|glob| Channel::glob_for(pattern).to_string() == glob)
        };
        let select = match &glob {
            Some(_) => Select::Patterns(&through_glob),
            None => Select::Exact,
        };
        match envelope.kind {
            Kind::Topic | Kind::Room => {
                // A room copy goes to its members' sessions only; a topic to every subscriber.
                let message = payload.message();
                let members = (envelope.kind == Kind::Room).then_some(&envelope.members[..]);
                self.router
                    .deliver_topic_from_peer(&envelope.route, &message, select, members);
            }
            Kind::User => {
                let message = envelope.message();
                let priority = if envelope.droppable {
                    Priority::Droppable
                } else {
                    Priority::Normal
                };
                if let Some(user) = channel.strip_prefix(USER) {
                    self.router
                        .deliver_user_from_peer(user, &envelope.route, &message, priority);
                } else if channel.starts_with(ROOM) {
                    // A room's copy: for each listed member with sessions here.
                    for user in &envelope.members {
                        self.router.deliver_user_from_peer(
                            user,
                            &envelope.route,
                            &message,
                            priority,
                        );
                    }
                }
            }
            Kind::Conversation if channel == CONTROL => {
                match serde_json::from_slice::<Conversation>(&envelope.body) {
                    Ok(conversation) => {
                        self.rooms.changed(&self.interest, &conversation);
                        (self.conversations)(conversation)
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
