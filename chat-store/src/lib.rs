//! Chat persistence for Stompbox: the [`ChatStore`] trait the chat layer talks to, its data
//! types, and [`SqliteStore`], the embedded implementation (SQLite in WAL mode, all writes
//! group-committed by one writer thread). The PostgreSQL path implements the same trait.
//!
//! The trait speaks only in the types below: no SQL, no connection, no row type leaks out, so
//! the chat layer cannot tell which store it is on. `docs/store.md` has the schema and why.
//!
//! Behind cargo features, the stores of the write path for scale (docs/persistence.md), so a
//! broker built without them links neither tokio-postgres nor rdkafka:
//!
//! - `postgres`: module `postgres` — `PostgresStore`, the schema (messages partitioned by month,
//!   created ahead and detached past a retention), versioned migrations applied at connect,
//!   and the reads (history, sync, conversations, contacts, receipts).
//! - `kafka` (implies `postgres`): module `record` — what goes through Kafka (a versioned JSON
//!   envelope keyed by conversation); [`kafka`]'s topic creation and idempotent (`acks=all`)
//!   producer; `postgres::apply` — applying a batch of records to PostgreSQL idempotently (the
//!   sink's database half, beside the schema it writes); and `StreamedStore`, the broker's
//!   store in this mode — accept to Kafka, RECEIPT on Kafka's ack, reads from PostgreSQL behind
//!   a barrier that makes them gap-free.
//!
//! [`kafka::KafkaConfig`] (plain settings) is there without any feature: the broker's
//! configuration holds it whether or not the binary can use it.

mod claim;
#[cfg(feature = "kafka")]
mod clock;
pub mod conformance;
mod conversation;
mod cursor;
mod device;
mod error;
pub mod kafka;
mod message;
#[cfg(feature = "postgres")]
pub mod postgres;
mod receipt;
#[cfg(feature = "kafka")]
pub mod record;
#[cfg(feature = "kafka")]
mod record_decode;
mod sqlite;
mod store;
#[cfg(feature = "kafka")]
mod streamed;

pub use claim::{ClaimHolder, SharedClaims};
pub use conversation::{
    Conversation, ConversationId, ConversationKind, Member, NewConversation, Role, UserId,
    direct_id, direct_pair,
};
pub use cursor::{Cursor, Sequenced};
pub use device::{PushDevice, Registered};
pub use error::StoreError;
pub use message::{Appended, StoredMessage};
pub use receipt::{ReadMark, ReceiptStatus, StatusChange};
pub use sqlite::SqliteStore;
pub use store::{ChatStore, Durability, SinkLag, Unready};

#[cfg(feature = "postgres")]
pub use postgres::{PostgresConfig, PostgresStore};
#[cfg(feature = "kafka")]
pub use streamed::StreamedStore;
