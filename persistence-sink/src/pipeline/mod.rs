//! The sink's Kafka half: consumes the events topic in a consumer group and applies each
//! partition's records in batches (by size, and by time after a batch's first record), each in
//! one transaction that also moves that partition's `sink_progress`; partitions are applied side
//! by side on several connections. A partition's offsets are committed only after its
//! transaction committed — so a crash anywhere replays at most the uncommitted batches, which
//! `apply_batch` absorbs.
//!
//! - [`source`]: each partition's own librdkafka queue, so that one partition's backlog never
//!   holds back another's.
//! - [`dispatch`]: the fetch task: serves the consumer's events, and routes what still comes
//!   through its queue (partitions added after start) to the partition's worker.
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
mod source;
mod stats;
mod worker;

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use rdkafka::consumer::Consumer;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

pub use self::config::SinkConfig;
pub use self::dead_letter::REASON_HEADER;
pub use self::error::SinkError;
pub use self::stats::SinkStats;

use self::apply::Applier;
use self::context::{SinkConsumer, SinkContext};
use self::dead_letter::DeadLetters;
use self::dispatch::Dispatched;
use self::source::Source;
use self::worker::Worker;
use crate::metrics::SinkMetrics;
use chat_store::PostgresStore;
use chat_store::kafka::KafkaConfig;

/// Longest a fetch request waits for records (see the consumer's configuration): short
/// enough for the lag, long enough that an idle sink sends only ~20 fetches a second.
const FETCH_WAIT_MAX_MS: u32 = 50;

/// librdkafka's prefetch bound in KiB, per partition (each has its own queue, `source`): 16 MiB,
/// over the ~3 MB of a full batch of chat records, so a partition's next batch is fetched
/// while one is applied; the default (64 MiB) would allow 0.75 GiB for 12 partitions.
const QUEUED_KBYTES: u32 = 16 * 1024;

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
            // What librdkafka prefetches of each partition (with a queue per partition, this
            // and `queued.max.messages.kbytes` bound each partition's own queue): about one
            // batch, where its default is 100,000 records (~30 MB of chat records).
            .set(
                "queued.min.messages",
                config.batch_max.clamp(1, 10_000_000).to_string(),
            )
            .set("queued.max.messages.kbytes", QUEUED_KBYTES.to_string())
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
    // Before the consumer is first polled (so none of their records is in its queue yet).
    let split = source::split(&consumer, &kafka.events_topic).await;
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
    let worker = |partition| Worker {
        partition,
        applier: &applier,
        consumer: &consumer,
        config,
        metrics,
        permits: &permits,
    };
    let mut workers = FuturesUnordered::new();
    let mut split_tx = HashMap::new();
    for (partition, queue) in split {
        let (records_tx, records_rx) = mpsc::channel(config.batch_max.max(1));
        split_tx.insert(partition, records_tx);
        workers.push(worker(partition).run(Source {
            records_rx,
            queue: Some(queue),
        }));
    }
    let mut dispatched_rx =
        dispatch::spawn(Arc::clone(&consumer), config.batch_max, split_tx, fetching);
    let mut stats = SinkStats::default();
    let mut fetching = true;
    while fetching || !workers.is_empty() {
        tokio::select! {
            dispatched = dispatched_rx.recv(), if fetching => match dispatched {
                Some(Dispatched::Partition { partition, records_rx }) => {
                    workers.push(worker(partition).run(Source { records_rx, queue: None }));
                }
                Some(Dispatched::Failed(e)) => return Err(e.into()),
                None => fetching = false,
            },
            Some(ended) = workers.next(), if !workers.is_empty() => stats.add(&ended?),
        }
    }
    Ok(stats)
}
