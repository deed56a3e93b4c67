//! Stompbox's persistence path for scale (docs/persistence.md): accepted chat messages and
//! status changes go broker → Kafka → sink → PostgreSQL, so live delivery never waits on the
//! database.
//!
//! - [`PostgresStore`]: the [`chat_store::ChatStore`] on PostgreSQL — the schema (messages
//!   partitioned by month, created ahead and detached past a retention), versioned migrations
//!   applied at connect, and the reads (history, sync, conversations, contacts, receipts).
//! - [`record`]: what goes through Kafka (a versioned JSON envelope keyed by conversation).
//! - [`kafka`]: topic creation and the idempotent (`acks=all`) producer.
//! - [`sink`]: applying a batch of records to PostgreSQL idempotently.
//! - [`pipeline`]: the sink's consumer loop (batches, retries, dead letters, offset commits).
//! - [`metrics`]: the sink's counters and persistence lag.
//! - [`StreamedStore`]: the broker's chat store in this mode — accept to Kafka, RECEIPT on
//!   Kafka's ack, reads from PostgreSQL behind a barrier that makes them gap-free.

pub mod kafka;
pub mod metrics;
pub mod pipeline;
mod postgres;
pub mod record;
pub mod sink;
mod streamed;

pub use postgres::{PartitionReport, Position, PostgresConfig, PostgresStore, is_transient};
pub use streamed::StreamedStore;
