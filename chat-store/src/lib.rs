//! Chat persistence for Stompbox: the [`ChatStore`] trait the chat layer talks to, its data
//! types, and [`SqliteStore`], the embedded implementation (SQLite in WAL mode, all writes
//! group-committed by one writer thread). The PostgreSQL path implements the same trait.
//!
//! The trait speaks only in the types below: no SQL, no connection, no row type leaks out, so
//! the chat layer cannot tell which store it is on. `docs/store.md` has the schema and why.

pub mod conformance;
mod conversation;
mod error;
mod message;
mod receipt;
mod sqlite;
mod store;

pub use conversation::{
    Conversation, ConversationId, ConversationKind, Member, NewConversation, Role, UserId,
    direct_id, direct_pair,
};
pub use error::StoreError;
pub use message::{Appended, StoredMessage};
pub use receipt::{ReadMark, ReceiptStatus, StatusChange};
pub use sqlite::SqliteStore;
pub use store::{ChatStore, Durability};
