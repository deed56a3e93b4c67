//! The scenarios and what they share: the receive loop (latency, per-stream accounting, ACKs),
//! the paced or unbounded publisher, and the drain wait at the end of a run.

pub mod ack;
pub mod fanout;
pub mod idle;
pub mod pairs;
pub mod reconnect;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use stomp_codec::{Command, Frame};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::conn::{self, Reader, Target, Transport, Writer};
use crate::outcome::Outcome;
use crate::scan::{Scanned, scan};
use crate::stamp::{Stamp, now_ns};
use crate::tally::{Latencies, Recorder, Streams};

/// Connections set up at once: enough to be quick, few enough not to trip accept backlogs.
const CONNECT_CONCURRENCY: usize = 128;
/// Frames encoded per write when publishing unbounded: one syscall carries many SENDs.
const UNBOUNDED_BATCH: usize = 32;
/// Pacing tick for rate-limited publishers (tokio's timer resolution is 1 ms).
const TICK: Duration = Duration::from_millis(1);

/// Connection and reporting options every scenario takes.
#[derive(clap::Args, Debug, Clone)]
pub struct Common {
    /// STOMP over TCP address of the broker.
    #[arg(long, default_value = "127.0.0.1:61613")]
    pub stomp: SocketAddr,
    /// STOMP over WebSocket URL (needed with --transport ws).
    #[arg(long)]
    pub ws: Option<String>,
    #[arg(long, value_enum, default_value_t = Transport::Tcp)]
    pub transport: Transport,
    /// CONNECT `host` header (RabbitMQ takes it as the virtual host).
    #[arg(long, default_value = "/")]
    pub host: String,
    #[arg(long, default_value = "guest")]
    pub login: String,
    #[arg(long, default_value = "guest")]
    pub passcode: String,
    /// Label for the broker in the output.
    #[arg(long, default_value = "stompbox")]
    pub broker: String,
    /// Broker process id, to read its RSS from /proc.
    #[arg(long)]
    pub broker_pid: Option<u32>,
    /// Message body size in bytes.
    #[arg(long, default_value_t = 128)]
    pub body_size: usize,
    /// Extra SUBSCRIBE header `name:value` (repeatable; `{i}` expands), e.g. prefetch.
    #[arg(long = "sub-header")]
    pub sub_headers: Vec<String>,
    /// Seconds to wait for in-flight messages after publishing stops.
    #[arg(long, default_value_t = 10.0)]
    pub drain_timeout: f64,
    /// Write the outcome as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Name of this case in reports (defaults to the scenario name).
    #[arg(long)]
    pub case: Option<String>,
}

impl Common {
    pub fn target(&self) -> Target {
        Target {
            stomp: self.stomp,
            ws_url: self.ws.clone(),
            transport: self.transport,
            host: self.host.clone(),
            login: self.login.clone(),
            passcode: self.passcode.clone(),
        }
    }

    pub fn sub_headers(&self, i: usize) -> Vec<(String, String)> {
        self.sub_headers
            .iter()
            .filter_map(|h| h.split_once(':'))
            .map(|(k, v)| (k.to_owned(), conn::expand(v, i)))
            .collect()
    }

    pub fn outcome(&self, scenario: &str) -> Outcome {
        let mut o = Outcome {
            scenario: self.case.clone().unwrap_or_else(|| scenario.to_owned()),
            broker: self.broker.clone(),
            transport: format!("{:?}", self.transport).to_lowercase(),
            ..Outcome::default()
        };
        o.params
            .insert("body_size".into(), self.body_size.to_string());
        o.params.insert("kind".into(), scenario.to_owned());
        o
    }
}

/// Shared counters of a receive side.
#[derive(Debug, Clone)]
pub struct Sink {
    pub latencies: Latencies,
    pub received: Arc<AtomicU64>,
    pub stop: CancellationToken,
}

impl Sink {
    pub fn new(receivers: usize) -> Self {
        Self {
            latencies: Latencies::new(receivers),
            received: Arc::new(AtomicU64::new(0)),
            stop: CancellationToken::new(),
        }
    }
}

/// What one receiver saw.
#[derive(Debug, Default)]
pub struct Received {
    pub streams: Streams,
    pub error: Option<String>,
}

/// Reads MESSAGEs until `sink.stop`, timing and accounting each; ACKs each when `ack` is set
/// (client-individual, STOMP 1.2 `ack` header), the ACKs of one read in one write. Holds
/// `writer` either way: dropping a TCP write half sends FIN, which a broker may take as the
/// client leaving.
///
/// Frames are split off with the cheap scan (`scan.rs`), and everything one read brought in is
/// timed by one clock read taken right after it: those frames arrived together.
pub async fn receive(
    mut reader: Reader,
    mut writer: Writer,
    ack: bool,
    who: usize,
    sink: Sink,
) -> Received {
    let mut out = Received::default();
    let mut latency = Recorder::default();
    loop {
        let filled = tokio::select! {
            biased;
            _ = sink.stop.cancelled() => break,
            filled = reader.fill() => filled,
        };
        match filled {
            Ok(true) => {}
            Ok(false) => {
                out.error = Some("broker closed a receiving connection".into());
                break;
            }
            Err(e) => {
                out.error = Some(format!("receive: {e}"));
                break;
            }
        }
        let now = now_ns();
        let mut counted = 0;
        let mut failed = None;
        let mut on_message = |body: &[u8], tag: Option<&str>| {
            if let Ok(stamp) = Stamp::try_from(body) {
                latency.record(now.saturating_sub(stamp.sent_ns));
                out.streams.record(stamp.stream, stamp.seq);
                counted += 1;
            }
            if let (true, Some(id)) = (ack, tag) {
                writer.queue(&Frame::new(Command::Ack).header("id", id));
            }
        };
        let (buf, codec) = reader.input();
        let scanned = scan(buf, codec, ack, |item| match item {
            Scanned::Message { body, ack: tag } => {
                on_message(body, tag.and_then(|t| std::str::from_utf8(t).ok()));
            }
            Scanned::Frame(f) if f.command == Command::Message => {
                on_message(&f.body, f.headers.get("ack"));
            }
            Scanned::Frame(f) if f.command == Command::Error && failed.is_none() => {
                failed = Some(format!(
                    "ERROR {}",
                    f.headers.get("message").unwrap_or_default()
                ));
            }
            Scanned::Frame(_) => {}
        });
        sink.received.fetch_add(counted, Ordering::Relaxed);
        if let Err(e) = scanned {
            out.error = Some(format!("receive: {e}"));
            break;
        }
        if let Some(error) = failed {
            out.error = Some(error);
            break;
        }
        if let Err(e) = writer.flush().await {
            out.error = Some(format!("ACK: {e}"));
            break;
        }
    }
    sink.latencies.absorb(who, &latency);
    out
}

/// One outbound stream: a destination and the stream id its stamps carry.
#[derive(Debug, Clone)]
pub struct Lane {
    pub writer_index: usize,
    pub destination: String,
    pub stream: u64,
    pub sent: u64,
}

/// Grace after the publishing window for a write the broker is holding back (flow control).
const BLOCKED_GRACE: Duration = Duration::from_secs(2);

/// What a publisher did.
pub struct Published {
    pub lanes: Vec<Lane>,
    pub writers: Vec<Writer>,
    /// The broker held a write past the window plus grace; unsent frames are not counted.
    pub blocked: bool,
}

/// Publishes round-robin over `lanes` through `writers` for `duration`, at `rate` msgs/s in
/// total (0 = as fast as the sockets take them). A frame counts as sent once all its bytes
/// were written.
pub async fn publish(
    mut writers: Vec<Writer>,
    mut lanes: Vec<Lane>,
    rate: f64,
    duration: Duration,
    body_size: usize,
) -> anyhow::Result<Published> {
    let templates: Vec<Frame> = lanes
        .iter()
        .map(|l| {
            Frame::new(Command::Send)
                .header("destination", l.destination.as_str())
                .header("content-type", "text/plain")
        })
        .collect();
    let start = Instant::now();
    let deadline = tokio::time::Instant::now() + duration + BLOCKED_GRACE;
    let mut total: u64 = 0;
    let mut next = 0usize;
    // Per writer: (end offset in its batch, lane) of each frame queued since the last flush.
    let mut queued: Vec<Vec<(usize, usize)>> = vec![Vec::new(); writers.len()];
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut blocked = false;
    'run: while start.elapsed() < duration {
        let due = if rate > 0.0 {
            ticker.tick().await;
            ((rate * start.elapsed().as_secs_f64()) as u64).saturating_sub(total)
        } else {
            UNBOUNDED_BATCH as u64
        };
        for _ in 0..due {
            let lane = &mut lanes[next];
            let stamp = Stamp {
                stream: lane.stream,
                seq: lane.sent,
                sent_ns: now_ns(),
            };
            let mut frame = templates[next].clone();
            frame.body = stamp.body(body_size).into();
            let w = &mut writers[lane.writer_index];
            w.queue(&frame);
            queued[lane.writer_index].push((w.pending(), next));
            lane.sent += 1;
            total += 1;
            next = (next + 1) % lanes.len();
        }
        for (i, w) in writers.iter_mut().enumerate() {
            if queued[i].is_empty() {
                continue;
            }
            if let Some(written) = w.flush_until(deadline).await? {
                queued[i].retain(|(end, _)| *end > written);
                blocked = true;
                break 'run;
            }
            queued[i].clear();
        }
        if rate <= 0.0 {
            tokio::task::yield_now().await;
        }
    }
    // Whatever is still queued never fully reached the broker.
    for (_, lane) in queued.into_iter().flatten() {
        lanes[lane].sent -= 1;
    }
    Ok(Published {
        lanes,
        writers,
        blocked,
    })
}

/// Waits until `expected` messages arrived, `timeout` passed, or nothing arrived for 3 s; then
/// stops the receivers. Returns when the last message counted arrived.
pub async fn drain(sink: &Sink, expected: u64, timeout: Duration) -> Instant {
    let start = Instant::now();
    let mut last = sink.received.load(Ordering::Relaxed);
    let mut last_change = Instant::now();
    loop {
        let now = sink.received.load(Ordering::Relaxed);
        if now != last {
            last = now;
            last_change = Instant::now();
        }
        if now >= expected
            || start.elapsed() >= timeout
            || last_change.elapsed() >= Duration::from_secs(3)
        {
            sink.stop.cancel();
            return last_change;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Runs `setup(i)` for `0..n` with bounded concurrency, in order of `i`.
pub async fn connect_all<T, F, Fut>(n: usize, setup: F) -> anyhow::Result<Vec<T>>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<T>> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
    let mut handles = Vec::with_capacity(n);
    for i in 0..n {
        let permit = permits.clone().acquire_owned().await?;
        let fut = setup(i);
        handles.push(tokio::spawn(async move {
            let r = fut.await;
            drop(permit);
            r
        }));
    }
    let mut out = Vec::with_capacity(n);
    for (i, h) in handles.into_iter().enumerate() {
        out.push(
            h.await?
                .map_err(|e| anyhow::anyhow!("connection {i}: {e:#}"))?,
        );
    }
    Ok(out)
}

/// Source address for connection `i`: `per_ip` connections per address, so no address runs
/// out of ports. The second octet changes with the process id, so a run does not bind ports
/// the previous run left in TIME_WAIT (the kernel's search for a free port then crawls).
pub fn source_ip(i: usize, per_ip: usize) -> Ipv4Addr {
    let n = (i / per_ip.max(1)) as u32 + 2;
    let run = (std::process::id() % 250) as u8 + 1;
    Ipv4Addr::new(127, run, ((n >> 8) & 0xff) as u8, (n & 0xff) as u8)
}

/// Connects and subscribes one receiver to `destination`.
pub async fn subscriber(
    target: Target,
    destination: String,
    ack: &'static str,
    extra: Vec<(String, String)>,
) -> anyhow::Result<(Reader, Writer)> {
    let (mut r, mut w) = conn::connect(&target, "0,0", None).await?;
    conn::subscribe(&mut r, &mut w, &destination, "0", ack, &extra).await?;
    Ok((r, w))
}

/// Fills in the accounting of `outcome` from receivers and the expectation per receiver.
pub fn account(outcome: &mut Outcome, received: &[Received], expected: &[u64], sink: &Sink) {
    for (r, &exp) in received.iter().zip(expected) {
        let unique = r.streams.unique_total();
        outcome.expected += exp;
        outcome.delivered += r.streams.received;
        outcome.lost += exp.saturating_sub(unique);
        outcome.duplicated += r.streams.duplicated;
        outcome.out_of_order += r.streams.out_of_order;
        if let Some(e) = &r.error {
            outcome.errors.push(e.clone());
        }
    }
    let h = sink.latencies.merged();
    outcome.latency = Some((&h).into());
}
