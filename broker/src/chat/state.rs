//! What every chat operation reads: the store, the router, ids, presence, the settings, the
//! conversations this node has seen, and the per-user state that shapes requests (rate
//! buckets, typing coalescing).

use std::sync::Arc;

use bytes::Bytes;
use chat_store::{ChatStore, Conversation};
use dashmap::DashMap;
use tokio::sync::broadcast;
use tokio::time::Instant;
use tokio_util::task::TaskTracker;

use super::effect::{Effect, OfflineEvent, Payload};
use super::error::AppError;
use super::peers::ChatPeers;
use super::presence::PresenceBackend;
use super::rate::RateLimit;
use super::redelivery::Redelivery;
use super::to_peers::ToPeers;
use crate::config::ChatConfig;
use crate::id::IdGenerator;
use crate::idle::IdleMap;
use crate::router::Router;

#[derive(Debug)]
pub struct ChatCore {
    pub store: Arc<dyn ChatStore>,
    pub router: Arc<Router>,
    pub ids: Arc<IdGenerator>,
    pub presence: Arc<dyn PresenceBackend>,
    /// Other nodes, as far as the chat needs them.
    pub peers: Arc<dyn ChatPeers>,
    pub config: ChatConfig,
    /// Conversations seen by this node, for membership checks that cannot wait for the store
    /// (SUBSCRIBE to a conversation's room, typing).
    pub(super) conversations: DashMap<String, Arc<Conversation>>,
    /// Last typing state sent per (user, conversation) and when, for coalescing.
    pub(super) typing: IdleMap<(String, String), (bool, Instant)>,
    pub(super) rate: RateLimit,
    /// Whether a retry delivers the original again (only where this node cannot know it was).
    pub(super) redelivery: Redelivery,
    pub(super) offline_tx: broadcast::Sender<OfflineEvent>,
    /// Push device registration: the providers that accept devices, the per-user limit.
    pub(super) devices: super::devices::Devices,
    /// Where the chat's tasks run (joined at shutdown), answers that wait for durability too.
    pub(super) tasks: TaskTracker,
    /// Appends in arrival order per conversation (held until the store answers where it
    /// `places_concurrent_appends`, until the call is queued elsewhere: chat/turn.rs).
    pub(super) turns: Arc<super::turn::Turns>,
    /// The same lines for a durable-later message's copies to other nodes: sent once Kafka
    /// acknowledged it, in the conversation's order (`sequencer::finish`).
    pub(super) crossings: Arc<super::turn::Turns>,
}

impl ChatCore {
    pub fn remember(&self, conversation: Conversation) -> Arc<Conversation> {
        let conversation = Arc::new(conversation);
        self.conversations
            .insert(conversation.id.clone(), Arc::clone(&conversation));
        conversation
    }

    /// A conversation this node changed: cached here, and every other node's cache gets the
    /// new snapshot (membership checks there must see it).
    pub fn changed(&self, conversation: Conversation) -> Arc<Conversation> {
        self.peers.conversation_changed(&conversation);
        self.remember(conversation)
    }

    pub fn cached(&self, id: &str) -> Option<Arc<Conversation>> {
        self.conversations.get(id).map(|c| Arc::clone(c.value()))
    }

    /// The conversation, from the cache or the store; `user` must be a member.
    pub async fn membership(&self, user: &str, id: &str) -> Result<Arc<Conversation>, AppError> {
        let conversation = match self.cached(id) {
            Some(c) => c,
            None => match self.store.conversation(id).await? {
                Some(c) => self.remember(c),
                None => return Err(AppError::UnknownConversation(id.to_string())),
            },
        };
        if !conversation.is_member(user) {
            return Err(AppError::NotAMember(id.to_string()));
        }
        Ok(conversation)
    }

    /// Whether `user` is a member of `conversation` as far as this node has seen (a SUBSCRIBE
    /// to its room cannot wait for the store).
    pub fn may_watch(&self, user: &str, conversation: &str) -> bool {
        self.conversations
            .get(conversation)
            .is_some_and(|c| c.members.iter().any(|m| m.user_id == user))
    }

    /// An event body with a fresh id.
    pub fn payload(&self, json: serde_json::Value) -> Payload {
        Payload {
            id: self.ids.next_id(),
            json: Bytes::from(json.to_string()),
            chat: false,
        }
    }

    /// [`ChatCore::payload`] of a serializable value, encoded straight from it: no
    /// `serde_json::Value` tree (a map and a string per field) in between, which every
    /// refused send (`RATE_LIMITED` at overload) paid.
    pub fn payload_of(&self, body: &impl serde::Serialize) -> Payload {
        Payload {
            id: self.ids.next_id(),
            json: Bytes::from(serde_json::to_vec(body).unwrap_or_default()),
            chat: false,
        }
    }

    pub fn apply(&self, effect: Effect) {
        effect.apply(&self.router, &self.offline_tx);
    }

    /// Applies `effect` to this node only; returns its copies for other nodes, unsent.
    pub fn apply_here(&self, effect: Effect) -> Option<ToPeers> {
        effect.apply_here(&self.router, &self.offline_tx)
    }

    pub fn send_to_peers(&self, copies: ToPeers) {
        copies.send(&self.router);
    }

    /// Resolves once the effects applied so far have left for the other nodes.
    pub fn flushed(&self) -> Option<tokio::sync::oneshot::Receiver<()>> {
        self.router.flushed()
    }
}
