//! `smoke`: every scenario for a second or two against a Stompbox it starts itself, failing on
//! any loss, duplicate, reorder or error. Keeps the harness working; not a measurement.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::conn::Transport;
use crate::outcome::Outcome;
use crate::scenario::{self, Common};

/// How long the broker may take to print its ready line (a debug build on a busy machine).
const READY_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Broker binary [default: $STOMPBOX_BIN, else the `stompbox` next to this binary].
    #[arg(long, env = "STOMPBOX_BIN")]
    pub bin: Option<PathBuf>,
}

/// A broker child process; killed when dropped.
struct Broker {
    child: Child,
    stomp: String,
    http: String,
    _data: PathBuf,
}

async fn start(bin: &PathBuf) -> anyhow::Result<Broker> {
    let data = std::env::temp_dir().join(format!("stompbox-bench-smoke-{}", std::process::id()));
    let mut child = Command::new(bin)
        .args([
            "--stomp-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ])
        .args(["--log", "warn", "--max-connections", "2000"])
        .arg("--data-dir")
        .arg(&data)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("start {}", bin.display()))?;
    let stdout = child.stdout.take().context("broker stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(READY_TIMEOUT, lines.next_line())
        .await
        .context("broker did not print its ready line")??
        .context("broker exited before it was ready")?;
    let field = |name: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(name))
            .map(str::to_owned)
            .with_context(|| format!("no {name} in ready line {line:?}"))
    };
    let stomp = field("stomp=")?;
    let http = field("http=")?;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(Broker {
        child,
        stomp,
        http,
        _data: data,
    })
}

pub async fn run(args: &Args) -> anyhow::Result<()> {
    // Without --bin/STOMPBOX_BIN: the broker built next to this binary (same profile).
    let bin = args.bin.clone().unwrap_or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(|d| d.join("stompbox")))
            .filter(|p| p.exists())
            .unwrap_or_else(|| PathBuf::from("target/debug/stompbox"))
    });
    let broker = start(&bin).await?;
    let pid = broker.child.id();
    let common = |transport: Transport| Common {
        stomp: broker.stomp.parse().expect("ready line address"),
        ws: Some(format!("ws://{}/ws", broker.http)),
        transport,
        host: "/".into(),
        login: "guest".into(),
        passcode: "guest".into(),
        broker: "stompbox".into(),
        broker_pid: pid,
        body_size: 128,
        sub_headers: Vec::new(),
        drain_timeout: 5.0,
        json: None,
        case: None,
    };
    let tcp = common(Transport::Tcp);
    let ws = common(Transport::Ws);
    let mut outcomes: Vec<Outcome> = Vec::new();
    let fanout = scenario::fanout::Args {
        publishers: 2,
        topics: 2,
        subscribers: 5,
        rate: 4000.0,
        duration: 1.0,
        topic_template: "/topic/smoke.{i}".into(),
    };
    outcomes.push(scenario::fanout::run(&tcp, &fanout).await?);
    outcomes.push(scenario::fanout::run(&ws, &fanout).await?);
    let pairs = scenario::pairs::Args {
        clients: 40,
        rate: 2000.0,
        duration: 1.0,
        peer_template: "/queue/smoke.pair.{i}".into(),
    };
    outcomes.push(scenario::pairs::run(&tcp, &pairs).await?);
    let ack = scenario::ack::Args {
        queues: 4,
        rate: 2000.0,
        duration: 1.0,
        queue_template: "/queue/smoke.ack.{i}".into(),
    };
    outcomes.push(scenario::ack::run(&tcp, &ack).await?);
    let idle = scenario::idle::Args {
        connections: 300,
        hold: 2.5,
        heart_beat: "1000,1000".into(),
        topic_template: "/topic/smoke.idle.{i}".into(),
        login_template: None,
    };
    outcomes.push(scenario::idle::run(&ws, &idle).await?);
    let reconnect = scenario::reconnect::Args {
        clients: 100,
        backoff_ms: 50,
        backoff_max_ms: 500,
        jitter_ms: 300,
        topic_template: "/topic/smoke.reconnect.{i}".into(),
    };
    outcomes.push(scenario::reconnect::run(&tcp, &reconnect).await?);

    let mut failed = Vec::new();
    for o in &outcomes {
        o.print();
        let moved_nothing = o.scenario != "idle" && o.delivered == 0;
        if !o.is_clean() || moved_nothing {
            failed.push(format!("{} ({})", o.scenario, o.transport));
        }
    }
    drop(broker);
    if !failed.is_empty() {
        bail!("smoke failed: {}", failed.join(", "));
    }
    println!("smoke: all {} runs clean", outcomes.len());
    Ok(())
}
