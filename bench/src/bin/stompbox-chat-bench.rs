//! Chat throughput and latency on Stompbox's built-in chat application (`/app/chat.send`).
//!
//! `pairs` users chat one-on-one over STOMP/TCP: every user SENDs to its peer at a fixed rate
//! with a `receipt`, so two latencies are measured per message from the same send instant:
//! send→stored (the RECEIPT, which the broker sends only after the durable write) and
//! send→delivered (the MESSAGE reaching the peer). Each stream also counts lost, duplicated and
//! out-of-order messages, so a fast wrong broker does not look good.
//!
//! Run against a broker you started (release build, its own data dir):
//! `cargo run --release -p stompbox-bench --bin stompbox-chat-bench -- --stomp 127.0.0.1:61613`
//!
//! Against a cluster, give every node's address (`--stomp A,B,C`) and where the two users of a
//! pair sit: `--placement same` (one node, the pair's k-th node round-robin) or `cross` (two
//! neighbouring nodes, so every message takes the Redis hop); `scripts/bench-cluster.sh` runs
//! both on the same cluster to isolate what the hop adds.

#[path = "../chat_conn.rs"]
mod chat_conn;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use parking_lot::Mutex;
use stomp_codec::{Command, Frame, Item};

use chat_conn::{Conn, chat_send, connect, histogram, print_latency};

#[derive(Debug, Parser)]
struct Args {
    /// Broker STOMP/TCP address; several (comma-separated) for the nodes of a cluster.
    #[arg(long, default_value = "127.0.0.1:61613", value_delimiter = ',')]
    stomp: Vec<SocketAddr>,
    /// Where the two users of a pair connect, given several nodes.
    #[arg(long, value_enum, default_value_t = Placement::Same)]
    placement: Placement,
    /// Pairs of users (2 × pairs connections).
    #[arg(long, default_value_t = 50)]
    pairs: usize,
    /// Messages per second over all users.
    #[arg(long, default_value_t = 2000)]
    rate: u64,
    /// Seconds of sending.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Seconds to wait, after the last send, for what is still missing; a run that does not
    /// complete still reports what it measured, with the missing counted as lost.
    #[arg(long, default_value_t = 30)]
    drain_seconds: u64,
    /// Prefix of user names (vary it between runs on the same store).
    #[arg(long, default_value = "bench")]
    prefix: String,
    /// Also print send→stored per second of sending (p50 / p99 / max), to see latency drift
    /// over a long run (issue 17: flat as the store grows).
    #[arg(long)]
    per_second: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Placement {
    /// Both users of pair k on node k mod N: delivery stays on the node.
    Same,
    /// The users of pair k on nodes k and k+1 (mod N): every delivery crosses nodes.
    Cross,
}

impl Placement {
    /// The node user `i` connects to, of `nodes`.
    fn node(self, i: usize, nodes: usize) -> usize {
        let pair = i / 2;
        match self {
            Placement::Same => pair % nodes,
            Placement::Cross => (pair + i % 2) % nodes,
        }
    }
}

#[derive(Default)]
struct Tally {
    stored: Option<Histogram<u64>>,
    delivered: Option<Histogram<u64>>,
    /// How long after the sender's RECEIPT the peer had the message (1 µs when it came first):
    /// on one node both leave together, across nodes the difference is the Redis hop.
    after_receipt: Option<Histogram<u64>>,
    /// clientMessageId → when its RECEIPT or its delivery was seen, whichever came first.
    first_seen: HashMap<String, u64>,
    sent: u64,
    receipts: u64,
    received: u64,
    duplicates: u64,
    out_of_order: u64,
    /// Sends answered on /user/queue/errors instead of a RECEIPT, by error code.
    refused: std::collections::BTreeMap<String, u64>,
    /// send→stored by the second (since the clock started) in which the message was sent.
    per_second: Vec<Histogram<u64>>,
    /// When the clock started, in µs since the epoch the stamps count from.
    started_us: u64,
}

impl Tally {
    /// Records a send→stored latency, overall and in its send second's histogram.
    fn record_stored(&mut self, sent_us: u64, latency_us: u64) {
        if let Some(h) = self.stored.as_mut() {
            let _ = h.record(latency_us);
        }
        let second = (sent_us.saturating_sub(self.started_us) / 1_000_000) as usize;
        if self.per_second.len() <= second {
            self.per_second.resize_with(second + 1, histogram);
        }
        let _ = self.per_second[second].record(latency_us);
    }

    /// The per-second series, then the first and the last `window` seconds' p99 side by side.
    fn print_per_second(&self) {
        println!("second  receipts  send→stored p50 / p99 / max (ms)");
        for (second, h) in self.per_second.iter().enumerate() {
            println!(
                "{second:>6}  {:>8}  {:.2} / {:.2} / {:.2}",
                h.len(),
                h.value_at_quantile(0.5) as f64 / 1000.0,
                h.value_at_quantile(0.99) as f64 / 1000.0,
                h.max() as f64 / 1000.0
            );
        }
        let window = (self.per_second.len() / 2).min(60);
        if window == 0 {
            return;
        }
        let merged = |hs: &[Histogram<u64>]| {
            let mut all = histogram();
            for h in hs {
                let _ = all.add(h);
            }
            all.value_at_quantile(0.99) as f64 / 1000.0
        };
        let n = self.per_second.len();
        println!(
            "send→stored p99 first {window} s {:.2} ms, last {window} s {:.2} ms",
            merged(&self.per_second[..window]),
            merged(&self.per_second[n - window..])
        );
    }

    /// Pairs a message's RECEIPT with its delivery (either may come first) into `after_receipt`.
    fn pair_up(&mut self, client_message_id: String, now: u64, delivered: bool) {
        let Some(first) = self.first_seen.remove(&client_message_id) else {
            self.first_seen.insert(client_message_id, now);
            return;
        };
        // Delivered second: the lag behind the RECEIPT; delivered first: no lag.
        let lag = if delivered {
            now.saturating_sub(first)
        } else {
            0
        };
        if let Some(h) = self.after_receipt.as_mut() {
            let _ = h.record(lag.max(1));
        }
    }
}

/// Marks the sends that only open a conversation; receivers skip them.
const OPENING: &str = "opening-";

/// Sends the opening message to `peer` and waits for its RECEIPT.
async fn open_conversation(conn: &mut Conn, peer: &str) -> anyhow::Result<()> {
    let body = serde_json::json!({
        "recipientId": peer,
        "content": "opening",
        "clientMessageId": format!("{OPENING}{peer}"),
    });
    conn.send(
        Frame::new(Command::Send)
            .header("destination", "/app/chat.send")
            .header("receipt", "opening")
            .with_body(body.to_string()),
    )
    .await?;
    loop {
        match conn.next().await {
            Some(Ok(Item::Frame(f))) if f.command == Command::Receipt => return Ok(()),
            Some(Ok(Item::Frame(f)))
                if f.command == Command::Message
                    && f.headers.get("subscription") == Some("errors") =>
            {
                bail!("opening {peer}: {}", String::from_utf8_lossy(&f.body))
            }
            Some(Ok(_)) => {}
            other => bail!("no RECEIPT opening {peer}: {other:?}"),
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.placement == Placement::Cross && args.stomp.len() < 2 {
        bail!("--placement cross needs at least two --stomp addresses");
    }
    let users = args.pairs * 2;
    let tally = Arc::new(Mutex::new(Tally {
        stored: Some(histogram()),
        delivered: Some(histogram()),
        after_receipt: Some(histogram()),
        ..Tally::default()
    }));
    let epoch = Instant::now();
    let mut conns = Vec::with_capacity(users);
    for i in 0..users {
        let node = args.stomp[args.placement.node(i, args.stomp.len())];
        // The receipted last subscription (sync) puts messages and errors in place first.
        conns.push(
            connect(
                node,
                &format!("{}{i}", args.prefix),
                &["messages", "errors", "sync"],
            )
            .await?,
        );
    }
    // One side of each pair opens the conversation before the clock starts, so the measured
    // sends never race two first messages creating the same DIRECT conversation.
    for (i, conn) in conns.iter_mut().enumerate().step_by(2) {
        open_conversation(conn, &format!("{}{}", args.prefix, i + 1)).await?;
    }
    let per_user_interval = Duration::from_secs_f64(users as f64 / args.rate as f64);
    let total_per_user = (args.seconds as f64 / per_user_interval.as_secs_f64()).ceil() as u64;
    let started = Instant::now();
    tally.lock().started_us = epoch.elapsed().as_micros() as u64;
    let mut tasks = Vec::new();
    for (i, conn) in conns.into_iter().enumerate() {
        let peer = format!("{}{}", args.prefix, i ^ 1);
        let tally = Arc::clone(&tally);
        // Users' sends are spread evenly over the interval, as independent users' are: started
        // on one clock tick, all 1,000 would send in the same millisecond every interval, and
        // the bench would measure how long a burst of 1,000 queues, not a message's latency.
        let phase = per_user_interval.mul_f64(i as f64 / users as f64);
        tasks.push(tokio::spawn(run_user(
            conn,
            User { me: i, peer, phase },
            per_user_interval,
            total_per_user,
            Duration::from_secs(args.drain_seconds),
            epoch,
            tally,
        )));
    }
    for t in tasks {
        t.await??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let t = tally.lock();
    let stored = t.stored.as_ref().context("histogram")?;
    let delivered = t.delivered.as_ref().context("histogram")?;
    let after_receipt = t.after_receipt.as_ref().context("histogram")?;
    let lost = t.sent.saturating_sub(t.received);
    println!(
        "chat bench: {users} users in {} pairs on {} node(s), placement {:?}, target {} msgs/s for {} s",
        args.pairs,
        args.stomp.len(),
        args.placement,
        args.rate,
        args.seconds
    );
    println!(
        "sent {} | receipts {} | delivered {} | lost {} | duplicates {} | out of order {}",
        t.sent, t.receipts, t.received, lost, t.duplicates, t.out_of_order
    );
    let refused: u64 = t.refused.values().sum();
    if refused > 0 {
        println!("refused {refused} sends: {:?}", t.refused);
    }
    println!(
        "throughput {:.0} msgs/s stored and delivered",
        t.received as f64 / elapsed
    );
    for (name, h) in [
        ("send→stored (RECEIPT)", stored),
        ("send→delivered", delivered),
        ("RECEIPT→delivered", after_receipt),
    ] {
        print_latency(name, h);
    }
    if args.per_second {
        t.print_per_second();
    }
    if lost > 0 || t.duplicates > 0 || t.out_of_order > 0 || t.receipts != t.sent || refused > 0 {
        bail!("chat bench saw loss, duplication, reordering, missing receipts or refused sends");
    }
    Ok(())
}

/// A bench user: its index, the login of its peer, and how far into each interval it sends.
struct User {
    me: usize,
    peer: String,
    phase: Duration,
}

/// Sends `count` messages to `peer` at `interval`, and reads its own socket until it has both
/// every RECEIPT for what it sent and every message its peer sent, or `drain` after the last
/// send (what is missing then counts as lost).
async fn run_user(
    conn: Conn,
    User { me, peer, phase }: User,
    interval: Duration,
    count: u64,
    drain: Duration,
    epoch: Instant,
    tally: Arc<Mutex<Tally>>,
) -> anyhow::Result<()> {
    let (mut sink, mut stream) = conn.split();
    let sent_at: Arc<Mutex<HashMap<String, u64>>> = Arc::new(Mutex::new(HashMap::new()));
    let writer_sent = Arc::clone(&sent_at);
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let writer = tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + phase, interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        for seq in 0..count {
            tick.tick().await;
            let now = epoch.elapsed().as_micros() as u64;
            // The run's nonce keeps the ids fresh when runs share a store and a prefix (the
            // store would answer a reused one as a retry).
            let receipt = format!("{me}-{seq}-{nonce}");
            writer_sent.lock().insert(receipt.clone(), now);
            let body = serde_json::json!({
                "recipientId": peer,
                "content": format!("{seq} {now}"),
                "clientMessageId": receipt,
            });
            sink.send(chat_send(&body, receipt)).await?;
        }
        anyhow::Ok(sink)
    });
    let (mut receipts, mut received, mut next_seq) = (0u64, 0u64, 0u64);
    let deadline = Instant::now() + phase + interval * (count as u32) + drain;
    while receipts < count || received < count {
        let Ok(item) = tokio::time::timeout_at(deadline.into(), stream.next()).await else {
            break;
        };
        let Some(item) = item else {
            bail!("connection closed")
        };
        let Item::Frame(frame) = item? else { continue };
        let now = epoch.elapsed().as_micros() as u64;
        match frame.command {
            Command::Receipt => {
                let id = frame
                    .headers
                    .get("receipt-id")
                    .unwrap_or_default()
                    .to_string();
                if let Some(t0) = sent_at.lock().remove(&id) {
                    receipts += 1;
                    let mut t = tally.lock();
                    t.receipts += 1;
                    t.sent += 1;
                    t.record_stored(t0, now.saturating_sub(t0).max(1));
                    t.pair_up(id, now, false);
                }
            }
            Command::Message if frame.headers.get("subscription") == Some("messages") => {
                let v: serde_json::Value = serde_json::from_slice(&frame.body)?;
                let content = v["content"].as_str().unwrap_or_default();
                let mut parts = content.split(' ');
                let seq: u64 = parts
                    .next()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(u64::MAX);
                let t0: u64 = parts.next().and_then(|s| s.parse().ok()).unwrap_or(now);
                // The sender's own echo arrives on its other subscriptions too: only count the
                // peer's, and not the opening message.
                let from_peer = v["clientMessageId"]
                    .as_str()
                    .is_some_and(|c| !c.starts_with(&format!("{me}-")) && !c.starts_with(OPENING));
                if !from_peer {
                    continue;
                }
                let mut t = tally.lock();
                if seq < next_seq {
                    t.duplicates += 1;
                    continue;
                }
                if seq > next_seq {
                    t.out_of_order += 1;
                }
                next_seq = seq + 1;
                received += 1;
                t.received += 1;
                if let Some(cmid) = v["clientMessageId"].as_str() {
                    t.pair_up(cmid.to_string(), now, true);
                }
                if let Some(h) = t.delivered.as_mut() {
                    let _ = h.record(now.saturating_sub(t0).max(1));
                }
            }
            // A refused send (e.g. UNAVAILABLE when the store gives up on a deadlock) is not
            // retried: it is counted, the run goes on, and the run is reported dirty.
            Command::Message if frame.headers.get("subscription") == Some("errors") => {
                let v: serde_json::Value = serde_json::from_slice(&frame.body)?;
                let cmid = v["clientMessageId"].as_str().unwrap_or_default();
                if sent_at.lock().remove(cmid).is_some() {
                    receipts += 1;
                }
                let code = v["code"].as_str().unwrap_or("?").to_string();
                *tally.lock().refused.entry(code).or_default() += 1;
            }
            Command::Message => bail!(
                "unexpected MESSAGE: {}",
                String::from_utf8_lossy(&frame.body)
            ),
            Command::Error => bail!("ERROR: {:?}", frame.headers.get("message")),
            _ => {}
        }
    }
    let _ = writer.await??;
    Ok(())
}
