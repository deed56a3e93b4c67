//! What the chat needs of other nodes ([`ChatPeers`]), over Redis.

use chat_store::Conversation;
use futures_util::FutureExt;
use futures_util::future::BoxFuture;

use super::Cluster;
use crate::chat::peers::ChatPeers;

impl ChatPeers for Cluster {
    fn conversation_changed(&self, conversation: &Conversation) {
        Cluster::conversation_changed(self, conversation);
    }

    fn conversations_loaded(&self, user: &str, conversations: &[Conversation]) {
        self.rooms.loaded(&self.interest, user, conversations);
    }

    fn until_user_live<'a>(&'a self, user: &'a str) -> BoxFuture<'a, ()> {
        Cluster::until_user_live(self, user).boxed()
    }

    /// The node that stored the original may have died before delivering it, and members who
    /// stayed connected elsewhere would never see it (unless this node delivered it).
    fn redeliver_duplicates(&self) -> bool {
        true
    }
}
