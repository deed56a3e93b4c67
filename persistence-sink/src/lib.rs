//! The sink of Stompbox's persistence path for scale (docs/persistence.md): accepted chat
//! messages and status changes go broker → Kafka → sink → PostgreSQL, so live delivery never
//! waits on the database. This crate is the sink service (`stompbox-sink`) and its benchmark.
//!
//! - [`pipeline`]: the sink's consumer loop (batches, retries, dead letters, offset commits).
//! - [`metrics`]: the sink's counters and persistence lag.
//!
//! What it shares with the broker lives with the stores in `chat-store` (feature `kafka`): the
//! records (`chat_store::record`), the Kafka topics and producer (`chat_store::kafka`), the
//! PostgreSQL schema (`chat_store::PostgresStore`) and applying a batch of records to it
//! idempotently (`chat_store::postgres::apply`).

pub mod metrics;
pub mod pipeline;
