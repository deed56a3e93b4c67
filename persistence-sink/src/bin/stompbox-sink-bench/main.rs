//! `stompbox-sink-bench`: the sink's throughput and persistence lag against the real services
//! (`scripts/services.sh up`, then `set -a; . .run/services.env; set +a` for
//! STOMPBOX_POSTGRES_URL / STOMPBOX_KAFKA_BROKERS, or the flags).
//!
//! - `throughput`: produces N MESSAGE records first, then runs the sink (in this process, the
//!   library's pipeline) and times it from start until every row is in PostgreSQL.
//! - `lag`: runs the sink, produces at a fixed rate for a while, and reports the persistence
//!   lag (Kafka record timestamp → batch committed) p50/p99 of the sink's own metric.
//! - `producers`: no sink; a plain rdkafka producer and the broker's own producer send the
//!   same records to the same Kafka-protocol broker, one after the other (`baseline`): the
//!   broker's ceiling beside ours.
//! - `copy-ceiling`: no Kafka, no sink; the same rows straight into PostgreSQL by the sink's
//!   COPY on `--connections` connections (`ceiling`): PostgreSQL's ceiling beside the sink's.
//!
//! Each run uses a fresh topic, consumer group and PostgreSQL schema (`bench_<pid>_…`, left
//! for inspection; drop them with `DROP SCHEMA … CASCADE`).

mod baseline;
mod ceiling;
mod workload;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chat_store::kafka::{EventProducer, KafkaConfig, ensure_topics};
use chat_store::{PostgresConfig, PostgresStore};
use clap::{Parser, Subcommand};
use persistence_sink::metrics::SinkMetrics;
use persistence_sink::pipeline::{SinkConfig, run_with_metrics};
use tokio_util::sync::CancellationToken;

use crate::workload::Workload;

#[derive(Debug, Parser)]
#[command(name = "stompbox-sink-bench")]
struct Cli {
    #[arg(long, env = "STOMPBOX_KAFKA_BROKERS")]
    kafka_brokers: String,
    #[arg(long, env = "STOMPBOX_POSTGRES_URL")]
    postgres_url: String,
    #[arg(long, default_value_t = 12)]
    partitions: i32,
    /// Conversations the messages are spread over (two members each).
    #[arg(long, default_value_t = 1_200)]
    conversations: usize,
    #[arg(long, default_value_t = SinkConfig::default().batch_max)]
    batch_size: usize,
    #[arg(long, default_value = "20ms", value_parser = humantime::parse_duration)]
    batch_time: Duration,
    #[arg(long, default_value_t = SinkConfig::default().connections)]
    connections: usize,
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Produce N records, then time the sink moving them all into PostgreSQL.
    Throughput {
        #[arg(long, default_value_t = 500_000)]
        messages: u64,
    },
    /// No sink: the same records through a plain rdkafka producer and through the broker's
    /// producer, each to a fresh topic; the acknowledged records per second of each.
    Producers {
        #[arg(long, default_value_t = 200_000)]
        messages: u64,
        /// The kinds to run, in this order (a later kind runs against a broker holding the
        /// earlier kinds' records: alternate the order to see whether that matters).
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "plain,plain-acks-all,stompbox"
        )]
        kinds: Vec<baseline::Kind>,
    },
    /// No Kafka, no sink: the same rows copied straight into PostgreSQL (`--connections`,
    /// `--batch-size` rows a transaction); rows per second.
    CopyCeiling {
        #[arg(long, default_value_t = 500_000)]
        messages: u64,
    },
    /// Produce at a fixed rate with the sink running; report the persistence lag.
    Lag {
        #[arg(long, default_value_t = 10_000)]
        rate: u64,
        #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
        duration: Duration,
    },
}

/// Longest the sink may take to catch up after the producer finished, before the run fails.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(600);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Only the sink's warnings (retries, dead letters) interleave with the figures, unless
    // RUST_LOG asks for more (`persistence_sink=debug`: each batch's timings).
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let brokers = cli.kafka_brokers.clone();
    let url = cli.postgres_url.clone();

    let run_id = format!(
        "bench_{}_{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    );
    let store = store_in_schema(&url, &run_id).await?;
    let mut kafka = KafkaConfig::new(brokers);
    kafka.events_topic = format!("{run_id}.events");
    kafka.dead_letter_topic = format!("{run_id}.dlt");
    kafka.partitions = cli.partitions;
    ensure_topics(&kafka).await?;
    let workload = Workload {
        conversations: cli.conversations,
        first_id: 1 << 40,
    };
    workload.create_conversations(&store).await?;
    let producer = EventProducer::new(&kafka)?;
    let sink = SinkConfig {
        group_id: format!("{run_id}.sink"),
        batch_max: cli.batch_size,
        batch_linger: cli.batch_time,
        connections: cli.connections,
        ..SinkConfig::default()
    };
    println!(
        "schema {run_id}, topic {} ({} partitions), batch {} / {:?}, {} connections",
        kafka.events_topic, cli.partitions, sink.batch_max, sink.batch_linger, sink.connections,
    );
    match cli.mode {
        Mode::Throughput { messages } => {
            let started = Instant::now();
            workload.produce(&producer, 0..messages).await?;
            let took = started.elapsed();
            println!(
                "produced {messages} in {took:.2?} ({:.0} msgs/s)",
                messages as f64 / took.as_secs_f64()
            );
            let metrics = SinkMetrics::default();
            let started = Instant::now();
            let cpu_before = cpu_seconds();
            with_sink(&kafka, &sink, &store, &metrics, messages).await?;
            let took = started.elapsed();
            let cpu = cpu_seconds() - cpu_before;
            println!(
                "sink: {messages} messages into PostgreSQL in {took:.2?}: {:.0} msgs/s ({} batches); \
                 sink process CPU {cpu:.2} s ({:.0} % of one core)",
                messages as f64 / took.as_secs_f64(),
                metrics.batches.load(Ordering::Relaxed),
                100.0 * cpu / took.as_secs_f64()
            );
        }
        Mode::Producers { messages, kinds } => {
            for rate in baseline::compare(&kafka, &workload, messages, &kinds).await? {
                println!("{rate}");
            }
            return Ok(());
        }
        Mode::CopyCeiling { messages } => {
            let took = ceiling::copy_all(
                &store,
                &workload,
                messages,
                sink.connections,
                sink.batch_max,
            )
            .await?;
            println!(
                "copy ceiling: {messages} rows into PostgreSQL in {took:.2?}: {:.0} rows/s",
                messages as f64 / took.as_secs_f64()
            );
        }
        Mode::Lag { rate, duration } => {
            let metrics = SinkMetrics::default();
            let total = rate * duration.as_secs();
            let produce = async {
                // Let the consumer join its group first: its start-up is not persistence lag.
                tokio::time::sleep(Duration::from_secs(3)).await;
                metrics.roll_window();
                produce_at_rate(&workload, &producer, rate, total).await
            };
            let (produced, drained) =
                tokio::join!(produce, with_sink(&kafka, &sink, &store, &metrics, total));
            produced?;
            drained?;
            let lag = metrics.roll_window();
            println!(
                "lag at {rate} msgs/s for {duration:?}: {} samples, p50 {} ms, p99 {} ms, max {} ms",
                lag.samples, lag.p50_ms, lag.p99_ms, lag.max_ms
            );
        }
    }
    count_rows(&url, &run_id).await
}

/// Runs the sink until `expected` messages are inserted, then stops it.
async fn with_sink(
    kafka: &KafkaConfig,
    config: &SinkConfig,
    store: &PostgresStore,
    metrics: &SinkMetrics,
    expected: u64,
) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let sink = run_with_metrics(kafka, config, store, metrics, shutdown.clone());
    let watch = async {
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        while metrics.messages_inserted.load(Ordering::Relaxed) < expected {
            if Instant::now() > deadline {
                shutdown.cancel();
                anyhow::bail!("sink did not insert {expected} messages in {DRAIN_TIMEOUT:?}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        shutdown.cancel();
        Ok(())
    };
    let (stats, watched) = tokio::join!(sink, watch);
    stats?;
    watched
}

/// `total` messages at `rate` per second, in 10 ms ticks.
async fn produce_at_rate(
    workload: &Workload,
    producer: &EventProducer,
    rate: u64,
    total: u64,
) -> anyhow::Result<()> {
    let producer = Arc::new(producer.clone());
    let per_tick = (rate / 100).max(1);
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let mut sends = tokio::task::JoinSet::new();
    let mut next = 0;
    while next < total {
        tick.tick().await;
        let end = (next + per_tick).min(total);
        for n in next..end {
            let producer = Arc::clone(&producer);
            let event = workload.message(n);
            sends.spawn(async move { producer.send(event).await });
        }
        next = end;
        while let Some(done) = sends.try_join_next() {
            done??;
        }
    }
    while let Some(done) = sends.join_next().await {
        done??;
    }
    Ok(())
}

async fn store_in_schema(url: &str, schema: &str) -> anyhow::Result<PostgresStore> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    let conn = tokio::spawn(conn);
    client
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await?;
    drop(client);
    let _ = conn.await;
    let mut config: PostgresConfig = url.parse()?;
    config
        .connection
        .options(format!("-c search_path={schema}"));
    config.pool_size = 32;
    Ok(PostgresStore::connect(config).await?)
}

async fn count_rows(url: &str, schema: &str) -> anyhow::Result<()> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    let row = client
        .query_one(
            &format!("SELECT count(*), count(DISTINCT message_id) FROM {schema}.messages"),
            &[],
        )
        .await?;
    let (rows, distinct): (i64, i64) = (row.get(0), row.get(1));
    println!("rows in {schema}.messages: {rows} ({distinct} distinct ids)");
    Ok(())
}

/// User + system CPU seconds of this process (from /proc/self/stat, in clock ticks of
/// 1/100 s, Linux's USER_HZ): whether the sink side or PostgreSQL is the bottleneck.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesized command name; utime and stime are the 14th and 15th.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: u64 = after_name
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|t| t.parse::<u64>().ok())
        .sum();
    ticks as f64 / 100.0
}
