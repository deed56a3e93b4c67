//! The chat's seam to other nodes: what a chat operation needs to know or tell beyond this
//! node. Cluster mode implements it over Redis (`cluster/chat.rs`); a single node has no peers
//! ([`Alone`]). The chat never names the cluster.

use std::fmt::Debug;
use std::sync::Arc;

use chat_store::Conversation;
use futures_util::future::{self, BoxFuture};

use super::presence::PresenceBackend;

/// What the chat reaches beyond its own state, wired by `broker.rs`: [`Alone`] and
/// [`super::presence::Local`] on a single node, the cluster's implementations otherwise.
#[derive(Debug)]
pub struct Backends {
    pub peers: Arc<dyn ChatPeers>,
    pub presence: Arc<dyn PresenceBackend>,
    /// Push devices the node's providers accept (`/app/push.register`), and how many a user
    /// may hold.
    pub devices: super::devices::Devices,
}

pub trait ChatPeers: Send + Sync + Debug {
    /// This node changed a conversation: other nodes' caches need the new snapshot (their
    /// membership checks must see it).
    fn conversation_changed(&self, conversation: &Conversation);

    /// A session of `user` started and these are all the user's conversations (a cluster
    /// listens to the GROUP rooms of its users).
    fn conversations_loaded(&self, user: &str, conversations: &[Conversation]);

    /// Resolves once deliveries to `user` from other nodes reach this node live, so a sync
    /// that reads the store afterwards leaves no gap between replay and live delivery. Bounded:
    /// it never stalls the sequencer for long.
    fn until_user_live<'a>(&'a self, user: &'a str) -> BoxFuture<'a, ()>;

    /// Whether a retried send the store already holds (a duplicate) may need delivering
    /// again when this node did not deliver the original: another node may have stored it
    /// and died before delivering it, while its members stayed connected elsewhere (they drop
    /// copies by messageId). A single node's restart closes every session, so never. What
    /// this node delivered itself it never delivers again (`chat/redelivery.rs`).
    fn redeliver_duplicates(&self) -> bool;
}

/// No other nodes: nothing to tell, nothing to wait for.
#[derive(Debug, Clone, Copy, Default)]
pub struct Alone;

impl ChatPeers for Alone {
    fn conversation_changed(&self, _: &Conversation) {}

    fn conversations_loaded(&self, _: &str, _: &[Conversation]) {}

    fn until_user_live<'a>(&'a self, _: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(future::ready(()))
    }

    fn redeliver_duplicates(&self) -> bool {
        false
    }
}
