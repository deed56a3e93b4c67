//! `stompbox-bench`: a STOMP 1.2 load generator (TCP and WebSocket) whose scenarios run
//! unchanged against Stompbox, RabbitMQ and ActiveMQ, plus the report that compares them.

mod conn;
mod hostile;
mod outcome;
mod report;
mod scan;
mod scenario;
mod smoke;
mod stamp;
mod tally;
mod usage;

use clap::{Parser, Subcommand};

use crate::outcome::Outcome;
use crate::scenario::Common;

#[derive(Parser, Debug)]
#[command(name = "stompbox-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// P publishers → D topics → S subscribers each: deliveries/s and end-to-end latency.
    Fanout {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        args: scenario::fanout::Args,
    },
    /// N clients in pairs sending to each other's personal destination at a fixed rate.
    Pairs {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        args: scenario::pairs::Args,
    },
    /// C idle subscribed connections: broker RSS per connection.
    Idle {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        args: scenario::idle::Args,
    },
    /// Queues with client-individual consumers ACKing every message.
    Ack {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        args: scenario::ack::Args,
    },
    /// N clients dropped at once reconnect with backoff and jitter.
    Reconnect {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        args: scenario::reconnect::Args,
    },
    /// Abuse (oversized/malformed frames, header floods, slowloris, a connection flood) against
    /// a running broker while a well-behaved client is served; fails if it was not.
    Hostile(hostile::Args),
    /// Every scenario for a second or two against a Stompbox started here; fails on any loss.
    Smoke(smoke::Args),
    /// Builds the comparison table, docs/benchmarks.md and PNG plots from --json results.
    Report(report::Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let (common, outcome) = match cli.command {
            Cmd::Fanout { common, args } => {
                let o = scenario::fanout::run(&common, &args).await?;
                (common, o)
            }
            Cmd::Pairs { common, args } => {
                let o = scenario::pairs::run(&common, &args).await?;
                (common, o)
            }
            Cmd::Idle { common, args } => {
                let o = scenario::idle::run(&common, &args).await?;
                (common, o)
            }
            Cmd::Ack { common, args } => {
                let o = scenario::ack::run(&common, &args).await?;
                (common, o)
            }
            Cmd::Reconnect { common, args } => {
                let o = scenario::reconnect::run(&common, &args).await?;
                (common, o)
            }
            Cmd::Hostile(args) => return hostile::run(&args).await,
            Cmd::Smoke(args) => return smoke::run(&args).await,
            Cmd::Report(args) => return report::run(&args),
        };
        finish(&common, &outcome)
    })
}

/// Prints the outcome and writes its JSON; a dirty run (loss, duplicates, reordering, errors)
/// still writes its numbers, and exits non-zero.
fn finish(common: &Common, outcome: &Outcome) -> anyhow::Result<()> {
    outcome.print();
    if let Some(path) = &common.json {
        std::fs::write(path, serde_json::to_vec_pretty(outcome)?)?;
    }
    if !outcome.is_clean() {
        eprintln!("run was not clean (loss, duplicates, reordering or errors)");
        std::process::exit(2);
    }
    Ok(())
}
