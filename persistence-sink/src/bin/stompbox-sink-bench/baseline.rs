//! `producers`: what the Kafka-protocol broker itself takes, beside what our producer gets from
//! it, in one run against the same broker and the same records (the bench's MESSAGE records:
//! same keys, same encoded bytes). Where the streamed store tops out, this separates the
//! broker's ceiling (the plain producer's rate) from ours (the gap to it).
//!
//! - `plain`: librdkafka as an application would use it first — a `ThreadedProducer` counting
//!   delivery reports in a callback, `acks=1`, no idempotence, no compression, `linger.ms=5`.
//! - `plain-acks-all`: the same with `acks=all` and idempotence: the broker's cost of the
//!   guarantees the store needs.
//! - `stompbox`: [`EventProducer`], the broker's producer (idempotent, `acks=all`, lz4,
//!   linger 5 ms), an ack per record awaited, as the streamed store sends.
//!
//! Each kind produces to its own fresh topic, so no kind appends behind another's records.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chat_store::kafka::{EventProducer, KafkaConfig, ensure_topics};
use chat_store::record::Record;
use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};

use crate::workload::Workload;

/// Longest a kind may take to have all its records acknowledged.
const ACK_TIMEOUT: Duration = Duration::from_secs(300);

/// Counts delivery reports (the plain producer's only bookkeeping).
#[derive(Default)]
struct Counting {
    acked: AtomicU64,
    failed: AtomicU64,
}

impl ClientContext for Counting {}

impl ProducerContext for Counting {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.acked.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.failed.fetch_add(1, Ordering::Relaxed),
        };
    }
}

/// One kind's result.
pub struct Rate {
    pub kind: &'static str,
    pub records: u64,
    pub bytes: u64,
    pub took: Duration,
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.took.as_secs_f64();
        write!(
            f,
            "{:<15} {} records ({} B of values) acknowledged in {:.2?}: {:.0} records/s, {:.1} MB/s",
            self.kind,
            self.records,
            self.bytes,
            self.took,
            self.records as f64 / secs,
            self.bytes as f64 / secs / 1e6
        )
    }
}

/// A producer measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    Plain,
    PlainAcksAll,
    Stompbox,
    /// The broker's producer driven by the bench's old loop (20,000 futures polled together).
    StompboxUnordered,
}

/// The old loop's window (its `IN_FLIGHT`).
const UNORDERED_WINDOW: usize = 20_000;

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Plain => "plain",
            Kind::PlainAcksAll => "plain-acks-all",
            Kind::Stompbox => "stompbox",
            Kind::StompboxUnordered => "stompbox-unordered",
        }
    }
}

/// Runs `kinds` one after another, each on a fresh topic named after the bench's.
pub async fn compare(
    kafka: &KafkaConfig,
    workload: &Workload,
    records: u64,
    kinds: &[Kind],
) -> anyhow::Result<Vec<Rate>> {
    let mut rates = Vec::new();
    for &kind in kinds {
        let topic = fresh_topic(kafka, kind.name()).await?;
        let rate = match kind {
            Kind::Plain | Kind::PlainAcksAll => {
                let workload = workload.clone();
                tokio::task::spawn_blocking(move || {
                    let records = (0..records).map(|n| encoded(&workload, n));
                    plain(&topic, kind == Kind::PlainAcksAll, kind.name(), records)
                })
                .await??
            }
            Kind::Stompbox | Kind::StompboxUnordered => {
                let producer = EventProducer::new(&topic)?;
                let bytes = (0..records)
                    .map(|n| encoded(workload, n).1.len() as u64)
                    .sum();
                let started = Instant::now();
                if kind == Kind::Stompbox {
                    workload.produce(&producer, 0..records).await?;
                } else {
                    workload
                        .produce_unordered(&producer, 0..records, UNORDERED_WINDOW)
                        .await?;
                }
                Rate {
                    kind: kind.name(),
                    records,
                    bytes,
                    took: started.elapsed(),
                }
            }
        };
        rates.push(rate);
    }
    Ok(rates)
}

/// The `n`th record as the store sends it: its key and its encoded value.
fn encoded(workload: &Workload, n: u64) -> (String, Vec<u8>) {
    let event = workload.message(n);
    let key = event.conversation_id().to_owned();
    (key, Record::from(event).to_bytes())
}

async fn fresh_topic(kafka: &KafkaConfig, kind: &str) -> anyhow::Result<KafkaConfig> {
    let mut topic = kafka.clone();
    topic.events_topic = format!("{}.{kind}", kafka.events_topic);
    topic.dead_letter_topic = format!("{}.{kind}.dlt", kafka.events_topic);
    ensure_topics(&topic).await?;
    Ok(topic)
}

/// Produces every record with a plain `ThreadedProducer` and waits for their reports.
fn plain(
    kafka: &KafkaConfig,
    guarantees: bool,
    kind: &'static str,
    records: impl Iterator<Item = (String, Vec<u8>)>,
) -> anyhow::Result<Rate> {
    let mut config: ClientConfig = kafka.client_config();
    config.set("linger.ms", "5").set("compression.type", "none");
    if guarantees {
        config.set("acks", "all").set("enable.idempotence", "true");
    } else {
        config.set("acks", "1").set("enable.idempotence", "false");
    }
    let producer: ThreadedProducer<Counting> = config.create_with_context(Counting::default())?;
    let started = Instant::now();
    let (mut sent, mut bytes) = (0u64, 0u64);
    for (key, value) in records {
        let mut record = BaseRecord::to(&kafka.events_topic)
            .key(&key)
            .payload(&value);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((e, _)) => return Err(e.into()),
            }
        }
        sent += 1;
        bytes += value.len() as u64;
    }
    producer.flush(ACK_TIMEOUT)?;
    let took = started.elapsed();
    let counts = producer.context();
    let (acked, failed) = (
        counts.acked.load(Ordering::Relaxed),
        counts.failed.load(Ordering::Relaxed),
    );
    anyhow::ensure!(
        acked == sent && failed == 0,
        "{kind}: {sent} sent, {acked} acknowledged, {failed} failed"
    );
    Ok(Rate {
        kind,
        records: sent,
        bytes,
        took,
    })
}
