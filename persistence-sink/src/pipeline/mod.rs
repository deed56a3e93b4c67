//! The sink's Kafka half: consumes the events topic in a consumer group and applies each
//! partition's records in batches (by size, and by time after a batch's first record), each in
//! one transaction that also moves that partition's `sink_progress`; partitions are applied side
//! by side on several connections. A partition's offsets are committed only after its
//! transaction committed — so a crash anywhere replays at most the uncommitted batches, which
//! `apply_batch` absorbs.
//!
//! - [`dispatch`]: the fetch task, routing records to their partition's worker.
//! - [`worker`]: one per partition: batching, apply, offset commit, metrics.
//! - [`apply`]: retries while PostgreSQL is unavailable (capped backoff, nothing committed);
//!   bisects a batch with a permanently failing record down to that record.
//! - [`dead_letter`]: refused records to the dead-letter topic, retried while Kafka is not
//!   reachable, with the reason in a header.
//! - [`commit`]: offset commits that survive a rebalance revoking a partition mid-batch.

mod apply;
mod backoff;
mod commit;
mod config;
mod consumed;
mod context;
mod dead_letter;
mod dispatch;
mod error;
mod stats;
mod worker;

use std::sync::Arc;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use rdkafka::consumer::Consumer;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

pub use self::config::SinkConfig;
pub use self::dead_letter::REASON_HEADER;
pub use self::error::SinkError;
pub use self::stats::SinkStats;

use self::apply::Applier;
use self::context::{SinkConsumer, SinkContext};
use self::dead_letter::DeadLetters;
use self::dispatch::Dispatched;
use self::worker::Worker;
use crate::metrics::SinkMetrics;
use chat_store::PostgresStore;
use chat_store::kafka::KafkaConfig;

/// Longest a fetch request waits for records (see the consumer's configuration): short
/// enough for the lag, long enough that an idle sink sends only ~20 fetches a second.
const FETCH_WAIT_MAX_MS: u32 = 50;

/// Runs until `shutdown` is cancelled; returns the totals.
pub async fn run(
    kafka: &KafkaConfig,
    config: &SinkConfig,
    store: &PostgresStore,
    shutdown: CancellationToken,
) -> Result<SinkStats, SinkError> {
    run_with_metrics(kafka, config, store, &SinkMetrics::default(), shutdown).await
}

/// [`run`], counting into `metrics` as batches commit. On shutdown each partition's batch in
/// hand is finished (or, while PostgreSQL is unavailable, abandoned uncommitted) before
/// returning.
pub async fn run_with_metrics(
    kafka: &KafkaConfig,
    config: &SinkConfig,
    store: &PostgresStore,
    metrics: &SinkMetrics,
    shutdown: CancellationToken,
) -> Result<SinkStats, SinkError> {
    let consumer: Arc<SinkConsumer> = Arc::new(
        kafka
            .client_config()
            .set("group.id", &config.group_id)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            // A fetch waits at most this long for new records. Kafka answers as soon as
            // there is data; tansu 0.6.0 was measured to hold fetches for the whole wait
            // (librdkafka's 500 ms default), which put a ~0.6 s floor under persistence lag.
            .set("fetch.wait.max.ms", FETCH_WAIT_MAX_MS.to_string())
            .set(
                "session.timeout.ms",
                config.session_timeout.as_millis().to_string(),
            )
            // librdkafka's rule: heartbeats well inside the session timeout.
            .set(
                "heartbeat.interval.ms",
                (config.session_timeout.as_millis() / 5)
                    .max(100)
                    .to_string(),
            )
            .create_with_context(SinkContext)?,
    );
    consumer.subscribe(&[&kafka.events_topic])?;
    let dead_letters = DeadLetters::new(kafka, config.max_backoff)?;
    let applier = Applier {
        store,
        topic: &kafka.events_topic,
        dead_letters: &dead_letters,
        max_backoff: config.max_backoff,
        shutdown: &shutdown,
    };
    let permits = Semaphore::new(config.connections.max(1));
    // The fetch task stops with `shutdown`, or when this function returns early on an error.
    let fetching = shutdown.child_token();
    let _stop_fetching = fetching.clone().drop_guard();
    let mut dispatched_rx = dispatch::spawn(Arc::clone(&consumer), config.batch_max, fetching);
    let mut workers = FuturesUnordered::new();
    let mut stats = SinkStats::default();
    let mut fetching = true;
    while fetching || !workers.is_empty() {
        tokio::select! {
            dispatched = dispatched_rx.recv(), if fetching => match dispatched {
                Some(Dispatched::Partition { partition, records_rx }) => {
                    let worker = Worker {
                        partition,
                        applier: &applier,
                        consumer: &consumer,
                        config,
                        metrics,
                        permits: &permits,
                    };
                    workers.push(worker.run(records_rx));
                }
                Some(Dispatched::Failed(e)) => return Err(e.into()),
                None => fetching = false,
            },
            Some(ended) = workers.next(), if !workers.is_empty() => stats.add(&ended?),
        }
    }
    Ok(stats)
}
