//! Shared fixtures: a store on a real file in a temp dir, and terse constructors.

#![allow(dead_code)]

use chat_store::{
    ChatStore, Conversation, ConversationKind, NewConversation, SqliteStore, StoredMessage,
    direct_id,
};
use tempfile::TempDir;

/// A store on a fresh file; keep the `TempDir` alive as long as the store.
pub fn file_store() -> (TempDir, SqliteStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&dir.path().join("db/chat.sqlite3")).expect("open store");
    (dir, store)
}

pub fn strings(users: &[&str]) -> Vec<String> {
    users.iter().map(|u| u.to_string()).collect()
}

pub async fn group(store: &SqliteStore, id: &str, creator: &str, members: &[&str]) -> Conversation {
    store
        .create_conversation(NewConversation {
            id: id.into(),
            kind: ConversationKind::Group,
            name: Some(format!("{id} room")),
            creator: creator.into(),
            members: strings(members),
            at_ms: 1_000,
        })
        .await
        .expect("create group")
}

pub async fn direct(store: &SqliteStore, a: &str, b: &str) -> Conversation {
    store
        .create_conversation(NewConversation {
            id: direct_id(a, b),
            kind: ConversationKind::Direct,
            name: None,
            creator: a.into(),
            members: strings(&[a, b]),
            at_ms: 1_000,
        })
        .await
        .expect("create direct")
}

pub fn message(id: u64, conversation: &str, sender: &str) -> StoredMessage {
    StoredMessage {
        message_id: id,
        conversation_id: conversation.into(),
        sender_id: sender.into(),
        content: format!("message {id}"),
        content_type: "text/plain".into(),
        client_message_id: None,
        timestamp_ms: 10_000 + id,
    }
}

pub fn ids(messages: &[StoredMessage]) -> Vec<u64> {
    messages.iter().map(|m| m.message_id).collect()
}
