//! The `stompbox` binary: configuration, logging, signals; everything else is the library.

use std::io::{IsTerminal, Write};

use anyhow::Context;
use stompbox::Server;
use stompbox::cli::{self, Command};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (config, log_filter) = match cli::load()? {
        Command::Run { config, log_filter } => (config, log_filter),
        Command::HashPassword(hash) => {
            println!("{hash}");
            return Ok(());
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(log_filter))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    let server = Server::bind(config).await?;
    let stomp = server.stomp_addr()?;
    let http = server.http_addr()?;
    // Scripts and tests read this one line to learn the ports (port 0 binds a free one).
    let mut stdout = std::io::stdout();
    writeln!(stdout, "stompbox ready stomp={stomp} http={http}").context("stdout")?;
    stdout.flush().context("stdout")?;
    tracing::info!(%stomp, ws = %format!("ws://{http}/ws"), "stompbox listening");

    server.run(shutdown_signal()).await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return ctrl_c.await.unwrap_or(()),
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
