//! The sink's Kafka half: consumes the events topic in a consumer group, batches by size and
//! time, applies each batch with [`apply_batch`], and commits offsets only after the database
//! transaction committed — so a crash anywhere replays at most the uncommitted batch, which
//! `apply_batch` absorbs.
//!
//! Errors: transient ones (PostgreSQL unavailable) retry the same batch with capped backoff
//! and commit nothing; a permanent one re-applies the batch record by record, and the records
//! that still fail go to the dead-letter topic with the reason in a header — the partition
//! keeps moving.

use std::collections::HashMap;
use std::time::Duration;

use chat_store::StoreError;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use crate::PostgresStore;
use crate::kafka::KafkaConfig;
use crate::record::{Event, Record};
use crate::sink::{Applied, apply_batch};

/// How the sink batches and retries.
#[derive(Debug, Clone)]
pub struct SinkConfig {
    pub group_id: String,
    /// Most records per database transaction: large enough to amortize the commit, small
    /// enough that a replay after a crash is cheap.
    pub batch_max: usize,
    /// Longest a batch waits to fill once its first record arrived (bounds persistence lag).
    pub batch_linger: Duration,
    /// Cap of the exponential backoff while PostgreSQL is unavailable.
    pub max_backoff: Duration,
}

impl Default for SinkConfig {
    fn default() -> Self {
        SinkConfig {
            group_id: "stompbox-sink".into(),
            batch_max: 2_000,
            batch_linger: Duration::from_millis(20),
            max_backoff: Duration::from_secs(5),
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
}

/// One consumed record: where it came from (for the offset commit) and what it decoded to.
struct Consumed {
    partition: i32,
    offset: i64,
    payload: Vec<u8>,
    key: Option<Vec<u8>>,
    decoded: Result<Event, String>,
}

/// Runs until `shutdown` is cancelled; returns the totals.
pub async fn run(
    kafka: &KafkaConfig,
    config: &SinkConfig,
    store: &PostgresStore,
    shutdown: CancellationToken,
) -> Result<SinkStats, SinkError> {
    let consumer: StreamConsumer = kafka
        .client_config()
        .set("group.id", &config.group_id)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()?;
    consumer.subscribe(&[&kafka.events_topic])?;
    let dead_letters: FutureProducer = kafka
        .client_config()
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .create()?;
    let mut stats = SinkStats::default();
    loop {
        let Some(batch) = next_batch(&consumer, config, &shutdown).await? else {
            return Ok(stats);
        };
        let events: Vec<Event> = batch
            .iter()
            .filter_map(|c| c.decoded.as_ref().ok().cloned())
            .collect();
        let mut poison: Vec<(&Consumed, String)> = batch
            .iter()
            .filter_map(|c| c.decoded.as_ref().err().map(|why| (c, why.clone())))
            .collect();
        match apply_with_retry(store, &events, config, &shutdown).await {
            Ok(Some(applied)) => add(&mut stats.applied, &applied),
            Ok(None) => return Ok(stats), // shut down while retrying: nothing committed
            Err(_) => {
                // Some record can never apply: isolate it, one record per transaction.
                for consumed in batch.iter().filter(|c| c.decoded.is_ok()) {
                    let Ok(event) = &consumed.decoded else {
                        continue;
                    };
                    match apply_with_retry(store, std::slice::from_ref(event), config, &shutdown)
                        .await
                    {
                        Ok(Some(applied)) => add(&mut stats.applied, &applied),
                        Ok(None) => return Ok(stats),
                        Err(e) => poison.push((consumed, e.to_string())),
                    }
                }
            }
        }
        for (consumed, why) in &poison {
            tracing::warn!(partition = consumed.partition, offset = consumed.offset, reason = %why, "dead-lettering record");
            let headers = OwnedHeaders::new().insert(Header {
                key: "stompbox-error",
                value: Some(why.as_str()),
            });
            let mut record = FutureRecord::to(&kafka.dead_letter_topic)
                .payload(&consumed.payload)
                .headers(headers);
            if let Some(key) = &consumed.key {
                record = record.key(key);
            }
            dead_letters
                .send(record, kafka.delivery_timeout)
                .await
                .map_err(|(e, _)| e)?;
            stats.dead_lettered += 1;
        }
        commit(&consumer, &kafka.events_topic, &batch)?;
        stats.batches += 1;
    }
}

fn add(total: &mut Applied, more: &Applied) {
    total.messages_inserted += more.messages_inserted;
    total.messages_skipped += more.messages_skipped;
    total.delivered += more.delivered;
    total.read_marks += more.read_marks;
}

/// The first record (waiting as long as it takes), then whatever arrives within the linger, up
/// to `batch_max`. `None` when shut down before a first record.
async fn next_batch(
    consumer: &StreamConsumer,
    config: &SinkConfig,
    shutdown: &CancellationToken,
) -> Result<Option<Vec<Consumed>>, SinkError> {
    let first = tokio::select! {
        () = shutdown.cancelled() => return Ok(None),
        msg = consumer.recv() => msg?,
    };
    let mut batch = vec![consumed(&first)];
    let deadline = tokio::time::Instant::now() + config.batch_linger;
    while batch.len() < config.batch_max {
        match tokio::time::timeout_at(deadline, consumer.recv()).await {
            Ok(msg) => batch.push(consumed(&msg?)),
            Err(_) => break,
        }
    }
    Ok(Some(batch))
}

fn consumed(msg: &rdkafka::message::BorrowedMessage<'_>) -> Consumed {
    let payload = msg.payload().unwrap_or_default().to_vec();
    let decoded = Record::try_from(payload.as_slice())
        .map(|r| r.event)
        .map_err(|e| e.to_string());
    Consumed {
        partition: msg.partition(),
        offset: msg.offset(),
        key: msg.key().map(<[u8]>::to_vec),
        payload,
        decoded,
    }
}

/// Applies with capped exponential backoff on transient errors. `Ok(None)`: shut down while
/// waiting. `Err`: a permanent error.
async fn apply_with_retry(
    store: &PostgresStore,
    events: &[Event],
    config: &SinkConfig,
    shutdown: &CancellationToken,
) -> Result<Option<Applied>, StoreError> {
    let mut backoff = Duration::from_millis(50);
    loop {
        let result = match store.client().await {
            Ok(mut client) => apply_batch(&mut client, events).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(applied) => return Ok(Some(applied)),
            Err(e) if e.is_transient() => {
                tracing::warn!(error = %e, ?backoff, "sink: PostgreSQL unavailable, retrying batch");
                tokio::select! {
                    () = shutdown.cancelled() => return Ok(None),
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(config.max_backoff);
            }
            Err(e) => return Err(e),
        }
    }
}

/// Commits, per partition, the offset after the batch's last record (synchronously: the next
/// batch starts only once Kafka has it).
fn commit(consumer: &StreamConsumer, topic: &str, batch: &[Consumed]) -> Result<(), KafkaError> {
    let mut next: HashMap<i32, i64> = HashMap::new();
    for c in batch {
        let entry = next.entry(c.partition).or_insert(c.offset + 1);
        *entry = (*entry).max(c.offset + 1);
    }
    let mut list = TopicPartitionList::new();
    for (partition, offset) in next {
        list.add_partition_offset(topic, partition, Offset::Offset(offset))?;
    }
    consumer.commit(&list, CommitMode::Sync)
}
