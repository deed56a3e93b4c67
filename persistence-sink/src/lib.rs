//! Stompbox's persistence path for scale (docs/persistence.md): accepted chat messages and
//! status changes go broker → Kafka → sink → PostgreSQL, so live delivery never waits on the
//! database.
//!
//! - [`PostgresStore`]: the [`chat_store::ChatStore`] on PostgreSQL — the schema (messages
//!   partitioned by month, created ahead and detached past a retention), versioned migrations
//!   applied at connect, and the reads (history, sync, conversations, contacts, receipts).

mod postgres;

pub use postgres::{PartitionReport, PostgresConfig, PostgresStore, is_transient};
