//! The sink's Kafka half: consumes the events topic in a consumer group, batches by size and
//! time, applies each partition's part of a batch in its own transaction (partitions in
//! parallel on several connections; the transaction also moves that partition's
//! `sink_progress`), and commits offsets only after those transactions committed — so a crash
//! anywhere replays at most the uncommitted batch, which `apply_batch` absorbs.
//!
//! - [`batch`]: the fetch task, one batch ahead of the apply loop.
//! - [`apply`]: retries while PostgreSQL is unavailable (capped backoff, nothing committed);
//!   bisects a batch with a permanently failing record down to that record.
//! - [`dead_letter`]: refused records to the dead-letter topic, retried while Kafka is not
//!   reachable, with the reason in a header.
//! - [`commit`]: offset commits that survive a rebalance revoking a partition mid-batch.

mod apply;
mod backoff;
mod batch;
mod commit;
mod dead_letter;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chat_store::StoreError;
use futures_util::StreamExt;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use tokio_util::sync::CancellationToken;

pub use self::dead_letter::REASON_HEADER;

use self::apply::{Applier, Outcome};
use self::batch::Batch;
use self::dead_letter::DeadLetters;
use crate::PostgresStore;
use crate::kafka::KafkaConfig;
use crate::metrics::SinkMetrics;
use crate::sink::Applied;

/// How the sink batches and retries.
#[derive(Debug, Clone)]
pub struct SinkConfig {
    pub group_id: String,
    /// Most records per batch: large enough to amortize the commits, small enough that a
    /// replay after a crash is cheap.
    pub batch_max: usize,
    /// Longest a batch waits to fill once its first record arrived (bounds persistence lag).
    pub batch_linger: Duration,
    /// Cap of the exponential backoff while PostgreSQL (or the dead-letter topic) is
    /// unavailable.
    pub max_backoff: Duration,
    /// Partitions of one batch applied at the same time, each on its own connection.
    pub connections: usize,
}

impl Default for SinkConfig {
    fn default() -> Self {
        SinkConfig {
            group_id: "stompbox-sink".into(),
            batch_max: 10_000,
            batch_linger: Duration::from_millis(20),
            max_backoff: Duration::from_secs(5),
            connections: 4,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error("postgres: {0}")]
    Store(#[from] StoreError),
}

/// Totals since start, for tests and logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SinkStats {
    pub batches: u64,
    pub applied: Applied,
    pub dead_lettered: u64,
    pub transient_retries: u64,
    /// Batches whose offset commit was (partly) dropped after a rebalance.
    pub commit_failures: u64,
}

/// Runs until `shutdown` is cancelled; returns the totals.
pub async fn run(
    kafka: &KafkaConfig,
    config: &SinkConfig,
    store: &PostgresStore,
    shutdown: CancellationToken,
) -> Result<SinkStats, SinkError> {
    run_with_metrics(kafka, config, store, &SinkMetrics::default(), shutdown).await
}

/// [`run`], counting into `metrics` as batches commit. On shutdown the batch being applied is
/// finished (or, while PostgreSQL is unavailable, abandoned uncommitted) before returning.
pub async fn run_with_metrics(
    kafka: &KafkaConfig,
    config: &SinkConfig,
    store: &PostgresStore,
    metrics: &SinkMetrics,
    shutdown: CancellationToken,
) -> Result<SinkStats, SinkError> {
    let consumer: Arc<StreamConsumer> = Arc::new(
        kafka
            .client_config()
            .set("group.id", &config.group_id)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            // A short fetch wait bounds the sink's lag when records trickle in: tansu answers a
            // fetch only when its wait expires even if records arrive meanwhile (with the
            // default 500 ms, every sync barrier took ~500 ms here). Real Kafka answers at
            // once; there this only adds idle fetches (100/s per broker).
            .set("fetch.wait.max.ms", "10")
            .create()?,
    );
    consumer.subscribe(&[&kafka.events_topic])?;
    let dead_letters = DeadLetters::new(kafka, config.max_backoff)?;
    let fetching = shutdown.child_token();
    let _stop_fetching = fetching.clone().drop_guard();
    let mut batches = batch::spawn_fetcher(Arc::clone(&consumer), config, fetching);
    let applier = Applier {
        store,
        topic: &kafka.events_topic,
        dead_letters: &dead_letters,
        max_backoff: config.max_backoff,
        shutdown: &shutdown,
    };
    let mut stats = SinkStats::default();
    loop {
        let batch = tokio::select! {
            biased;
            () = shutdown.cancelled() => return Ok(stats),
            batch = batches.recv() => match batch {
                Some(batch) => batch?,
                None => return Ok(stats),
            },
        };
        let outcomes: Vec<_> = futures_util::stream::iter(batch.iter())
            .map(|(&partition, records)| applier.apply_partition(partition, records))
            .buffer_unordered(config.connections.max(1))
            .collect()
            .await;
        let mut total = Outcome::default();
        let mut finished = true;
        for outcome in outcomes {
            match outcome? {
                Some(o) => {
                    total.applied.add(&o.applied);
                    total.dead_lettered += o.dead_lettered;
                    total.transient_retries += o.transient_retries;
                }
                None => finished = false,
            }
        }
        stats.transient_retries += total.transient_retries;
        metrics
            .transient_retries
            .fetch_add(total.transient_retries, Ordering::Relaxed);
        if !finished {
            // Shut down while PostgreSQL was unavailable: nothing of this batch is committed.
            return Ok(stats);
        }
        let committed = commit::commit(&consumer, &kafka.events_topic, &batch).await;
        stats.batches += 1;
        stats.applied.add(&total.applied);
        stats.dead_lettered += total.dead_lettered;
        stats.commit_failures += u64::from(!committed);
        count(metrics, &batch, &total, committed);
    }
}

fn count(metrics: &SinkMetrics, batch: &Batch, total: &Outcome, committed: bool) {
    let records = batch.values().map(Vec::len).sum::<usize>() as u64;
    metrics.records.fetch_add(records, Ordering::Relaxed);
    metrics.batches.fetch_add(1, Ordering::Relaxed);
    let applied = &total.applied;
    metrics
        .messages_inserted
        .fetch_add(applied.messages_inserted, Ordering::Relaxed);
    metrics
        .duplicates_skipped
        .fetch_add(applied.messages_skipped, Ordering::Relaxed);
    metrics
        .delivered
        .fetch_add(applied.delivered, Ordering::Relaxed);
    metrics
        .read_marks
        .fetch_add(applied.read_marks, Ordering::Relaxed);
    metrics
        .dead_letters
        .fetch_add(total.dead_lettered, Ordering::Relaxed);
    metrics
        .commit_failures
        .fetch_add(u64::from(!committed), Ordering::Relaxed);
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    metrics.record_lags(
        now_ms,
        batch.values().flatten().filter_map(|c| c.timestamp_ms),
    );
}
