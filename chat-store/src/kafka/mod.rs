//! The Kafka side of the write path for scale: [`KafkaConfig`] (always compiled: plain
//! settings) and, with the `kafka` feature, the topics and the idempotent producer that the
//! streamed store and the sink (`persistence-sink`) share.

#[cfg(feature = "kafka")]
mod client;
mod config;
#[cfg(feature = "kafka")]
mod producer;

#[cfg(feature = "kafka")]
pub use client::{ensure_topics, is_transient};
pub use config::{DEFAULT_DELIVERY_TIMEOUT, DEFAULT_PARTITIONS, KafkaConfig};
#[cfg(feature = "kafka")]
pub use producer::{Ack, Acked, EventProducer, OnFailure, Report, Reports, is_queue_full};
