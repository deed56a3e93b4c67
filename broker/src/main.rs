//! The `stompbox` binary: configuration, logging, signals; everything else is the library.

use std::io::{IsTerminal, Write};

use anyhow::Context;
use stompbox::Server;
use stompbox::cli::{self, Command};
use stompbox::config::LogFormat;
use tracing_subscriber::EnvFilter;

/// jemalloc, not glibc's malloc: an idle connection's RSS is ≈ 400 B smaller with it (19,000
/// connections: docs/benchmarks.md, "Fifth cuts"). glibc keeps the pages that each
/// connection's short-lived allocations (handshake, first task) leave behind interleaved with
/// the long-lived ones; jemalloc's size-class slabs keep them apart and, configured to purge
/// freed pages within about a second (`.cargo/config.toml`), gives them back.
#[cfg(not(feature = "mimalloc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Feature `mimalloc` (off by default, see broker/Cargo.toml): mimalloc instead.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (config, log_filter) = match cli::load()? {
        Command::Run { config, log_filter } => (config, log_filter),
        Command::HashPassword(hash) => {
            println!("{hash}");
            return Ok(());
        }
    };
    let logs = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(log_filter))
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
        // One object per line; the event's fields (`session`, `principal`, `reason`, ...)
        // under `fields`, for a log pipeline to index.
        LogFormat::Json => logs.json().with_current_span(false).init(),
    }

    let server = Server::bind(config).await?;
    let shutdown = shutdown_signal()?;
    let stomp = server.stomp_addr()?;
    let http = server.http_addr()?;
    // Scripts and tests read this one line to learn the ports (port 0 binds a free one).
    let mut stdout = std::io::stdout();
    // TLS listeners, when configured, follow as `stomp_tls=ADDR` and `https=ADDR`.
    let mut ready = format!("stompbox ready stomp={stomp} http={http}");
    if let Some(addr) = server.stomp_tls_addr() {
        ready.push_str(&format!(" stomp_tls={addr}"));
    }
    if let Some(addr) = server.https_addr() {
        ready.push_str(&format!(" https={addr}"));
    }
    writeln!(stdout, "{ready}").context("stdout")?;
    stdout.flush().context("stdout")?;
    tracing::info!(%stomp, ws = %format!("ws://{http}/ws"), "stompbox listening");
    if let Some(addr) = server.stomp_tls_addr() {
        tracing::info!(stomp_tls = %addr, "STOMP over TLS listening");
    }
    if let Some(addr) = server.https_addr() {
        tracing::info!(wss = %format!("wss://{addr}/ws"), "HTTPS listening");
    }

    server.run(shutdown).await;
    Ok(())
}

/// Installs the SIGINT/SIGTERM handlers now (so a signal that arrives right after the ready
/// line is not fatal) and returns a future that resolves on the first of them.
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    let mut terminate = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}
