//! `stompbox-sink`: Kafka → PostgreSQL (docs/persistence.md). Creates the topics and applies
//! the migrations when missing (waiting while either service is not up yet), prints
//! `stompbox-sink ready` on stdout, then runs the pipeline until SIGTERM/SIGINT: the batch in
//! hand is finished and committed, and the process exits 0.

mod cli;
mod http;

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context as _;
use chat_store::PostgresStore;
use chat_store::kafka::ensure_topics;
use clap::Parser as _;
use persistence_sink::metrics::SinkMetrics;
use persistence_sink::pipeline::run_with_metrics;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// Cap of the wait between start attempts while Kafka or PostgreSQL is not reachable yet.
const START_BACKOFF_MAX: Duration = Duration::from_secs(5);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = cli::Cli::parse();
    let shutdown = CancellationToken::new();
    spawn_signal_handler(shutdown.clone())?;

    let kafka = cli.kafka();
    // A property librdkafka refuses would otherwise surface as "not ready; retrying" forever.
    kafka.check().context("--kafka-option")?;
    // Kafka's errors while it starts are not told apart from lasting ones: always wait.
    let Some(()) = until_up(
        "kafka topics",
        &shutdown,
        || ensure_topics(&kafka),
        |_| false,
    )
    .await?
    else {
        return Ok(());
    };
    let postgres = cli.postgres()?;
    // PostgreSQL's are: a server that is down or starting is waited for; a certificate that
    // does not verify, a refused login or a failing migration end the start with the reason.
    let Some(store) = until_up(
        "postgres",
        &shutdown,
        || PostgresStore::connect(postgres.clone()),
        |e| !e.is_transient(),
    )
    .await
    .context("postgres")?
    else {
        return Ok(());
    };

    let metrics = Arc::new(SinkMetrics::default());
    if let Some(addr) = cli.metrics_addr {
        http::serve(addr, Arc::clone(&metrics), shutdown.clone())
            .await
            .with_context(|| format!("metrics endpoint on {addr}"))?;
    }
    tokio::spawn(log_forever(
        Arc::clone(&metrics),
        cli.log_interval,
        shutdown.clone(),
    ));
    println!("stompbox-sink ready");
    std::io::stdout().flush()?;

    let stats = run_with_metrics(&kafka, &cli.sink(), &store, &metrics, shutdown).await?;
    tracing::info!(?stats, "stompbox-sink stopped");
    Ok(())
}

fn spawn_signal_handler(shutdown: CancellationToken) -> std::io::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: finishing the current batch"),
            _ = int.recv() => tracing::info!("SIGINT: finishing the current batch"),
        }
        shutdown.cancel();
    });
    Ok(())
}

/// Retries `attempt` with capped backoff until it succeeds; `None` when shut down first, the
/// error when `permanent` says retrying cannot help.
async fn until_up<T, E: std::fmt::Display, F: Future<Output = Result<T, E>>>(
    what: &str,
    shutdown: &CancellationToken,
    mut attempt: impl FnMut() -> F,
    permanent: impl Fn(&E) -> bool,
) -> Result<Option<T>, E> {
    let mut backoff = Duration::from_millis(100);
    loop {
        match attempt().await {
            Ok(value) => return Ok(Some(value)),
            Err(e) if permanent(&e) => return Err(e),
            Err(e) => tracing::warn!(error = %e, ?backoff, "{what} not ready; retrying"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return Ok(None),
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(START_BACKOFF_MAX);
    }
}

/// One info line per interval: throughput counters and the window's persistence lag.
async fn log_forever(metrics: Arc<SinkMetrics>, every: Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let lag = metrics.roll_window();
        tracing::info!(
            records = metrics.records.load(Ordering::Relaxed),
            inserted = metrics.messages_inserted.load(Ordering::Relaxed),
            duplicates = metrics.duplicates_skipped.load(Ordering::Relaxed),
            batches = metrics.batches.load(Ordering::Relaxed),
            dead_letters = metrics.dead_letters.load(Ordering::Relaxed),
            transient_retries = metrics.transient_retries.load(Ordering::Relaxed),
            lag_samples = lag.samples,
            lag_p50_ms = lag.p50_ms,
            lag_p99_ms = lag.p99_ms,
            "sink progress"
        );
    }
}
