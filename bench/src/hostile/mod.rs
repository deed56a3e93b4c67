//! `hostile`: the abuse a broker on the internet meets — oversized and malformed frames, header
//! floods, slowloris, a connection flood from one address — run together against a broker,
//! while a well-behaved client from another address keeps doing round trips and new
//! connections. Reports what the victim saw and the broker's memory and descriptors.
//!
//! Not a benchmark of speed: the question is whether the broker keeps serving others with
//! bounded memory. The attackers bind one loopback address and the victim another, so per-IP
//! limits (when the broker has them) tell them apart. `scripts/hostile.sh` starts the broker
//! and runs this; docs/security.md has the figures.

mod attack;
mod report;
mod victim;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::conn::{Target, Transport};
use crate::usage;
use report::Report;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// STOMP over TCP address of the broker.
    #[arg(long, default_value = "127.0.0.1:61613")]
    pub stomp: SocketAddr,
    /// Host:port of the broker's HTTP listener (WebSocket at /ws).
    #[arg(long, default_value = "127.0.0.1:15674")]
    pub http: SocketAddr,
    /// Broker process id: RSS and open descriptors are read from /proc.
    #[arg(long)]
    pub broker_pid: u32,
    /// How long the attacks run, in seconds.
    #[arg(long, default_value_t = 20)]
    pub seconds: u64,
    /// Source address of every attack connection.
    #[arg(long, default_value = "127.0.0.3")]
    pub attacker: Ipv4Addr,
    /// Source address of the well-behaved client.
    #[arg(long, default_value = "127.0.0.2")]
    pub victim: Ipv4Addr,
    /// Connections the flood tries to hold open at once.
    #[arg(long, default_value_t = 4000)]
    pub flood: usize,
    /// Slowloris connections (each writes one byte of a CONNECT per second).
    #[arg(long, default_value_t = 200)]
    pub slowloris: usize,
    /// Parallel workers for each of the oversized, malformed and header-flood attacks.
    #[arg(long, default_value_t = 4)]
    pub workers: usize,
    /// CONNECT login and passcode of the victim (and of attackers that get past CONNECT).
    #[arg(long, default_value = "guest")]
    pub login: String,
    #[arg(long, default_value = "guest")]
    pub passcode: String,
    /// Write the report as JSON here.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
}

impl Args {
    fn target(&self) -> Target {
        Target {
            stomp: self.stomp,
            ws_url: Some(format!("ws://{}/ws", self.http)),
            transport: Transport::Tcp,
            host: "/".into(),
            login: self.login.clone(),
            passcode: self.passcode.clone(),
        }
    }
}

/// How often the broker's RSS and descriptors are sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// Quiet time before the attacks (the baseline) and after them (does memory come back?).
const SETTLE: Duration = Duration::from_secs(3);

pub async fn run(args: &Args) -> anyhow::Result<()> {
    usage::raise_nofile();
    let pid = args.broker_pid;
    let mut report = Report::new(args);
    let sampler = report::Sampler::start(pid, SAMPLE_EVERY);

    // The victim is connected before the attacks and stays for the whole run.
    let victim_stop = CancellationToken::new();
    let victim = tokio::spawn(victim::run(args.target(), args.victim, victim_stop.clone()));
    tokio::time::sleep(SETTLE).await;
    report.baseline = sampler.snapshot();

    let cpu = usage::Cpu::now();
    let stop = CancellationToken::new();
    let attacks = attack::spawn_all(args, stop.clone());
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    stop.cancel();
    report.during = sampler.snapshot();
    let used = usage::Cpu::now().since(&cpu);
    report.attacker_cpu_s = (used.user + used.system).as_secs_f64();
    for (name, handle) in attacks {
        report.attacks.insert(name, handle.await?);
    }
    sampler.reset_peak();
    tokio::time::sleep(SETTLE).await;
    report.after = sampler.snapshot();
    victim_stop.cancel();
    report.victim = victim.await??;
    report.broker_alive = usage::rss_kib(pid).is_some();

    report.print();
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)?;
    }
    if !report.victim_served() {
        eprintln!("the well-behaved client was not served throughout the attacks");
        std::process::exit(2);
    }
    Ok(())
}
