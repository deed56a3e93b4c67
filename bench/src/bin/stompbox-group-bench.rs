//! Group fan-out on Stompbox's chat application: one GROUP of `members` users, all online,
//! spread round-robin over the nodes given (`--stomp A,B,C`), and `senders` of them writing to
//! it at a fixed total rate. Every message is delivered to every other member, so a run offers
//! `rate × (members − 1)` deliveries per second; with several nodes most of them cross nodes
//! (one publish on the room's channel, received by every node with a member online).
//!
//! Measured per message: send→stored (the RECEIPT) and, per delivery, send→delivered; the
//! run's deliveries per second; and per (member, sender) stream the lost, duplicated and
//! out-of-order messages, so a fast wrong broker does not look good. The nodes should run
//! with `--chat-rate 0` (a bench sender exceeds a user's request limit) and a short
//! `--room-join-grace`, or the bench waits `--settle-seconds` past the default grace (10 s):
//! until then new members get their own copies rather than the room channel's.
//!
//! `scripts/bench-cluster.sh --cases groups` runs it at 100 and 1,000 members.

#[path = "../chat_conn.rs"]
mod chat_conn;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use parking_lot::Mutex;
use stomp_codec::{Command, Frame, Item};

use chat_conn::{Conn, chat_send, connect, histogram, print_latency};

#[derive(Debug, Parser)]
struct Args {
    /// Broker STOMP/TCP addresses, comma-separated: member i connects to node i mod N.
    #[arg(long, default_value = "127.0.0.1:61613", value_delimiter = ',')]
    stomp: Vec<SocketAddr>,
    /// Members of the group, its creator included (the broker allows at most 1,000).
    #[arg(long, default_value_t = 100)]
    members: usize,
    /// How many of the members send (the first ones, so they spread over the nodes too).
    #[arg(long, default_value_t = 3)]
    senders: usize,
    /// Group messages per second over all senders.
    #[arg(long, default_value_t = 20)]
    rate: u64,
    /// Seconds of sending.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Seconds to wait after the last send for what is still missing (then counted lost).
    #[arg(long, default_value_t = 20)]
    drain_seconds: u64,
    /// Seconds between the group's creation and the first send (past the nodes'
    /// `--room-join-grace`, so deliveries take the room channel as they would in steady state).
    #[arg(long, default_value_t = 1)]
    settle_seconds: u64,
    /// Prefix of user names (vary it between runs on the same store).
    #[arg(long, default_value = "group")]
    prefix: String,
}

#[derive(Default)]
struct Tally {
    stored: Option<Histogram<u64>>,
    delivered: Option<Histogram<u64>>,
    sent: u64,
    receipts: u64,
    deliveries: u64,
    duplicates: u64,
    out_of_order: u64,
    refused: std::collections::BTreeMap<String, u64>,
}

/// The clientMessageId of sender `sender`'s message `seq` in the run `nonce`; the content
/// carries `seq` and the send instant.
fn client_id(sender: usize, seq: u64, nonce: u128) -> String {
    format!("{sender}-{seq}-{nonce}")
}

/// The sender's index from a clientMessageId made by [`client_id`].
fn sender_of(client_message_id: &str) -> Option<usize> {
    client_message_id.split('-').next()?.parse().ok()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.members < 2 || args.senders == 0 || args.senders > args.members {
        bail!("need at least 2 members and 1..=members senders");
    }
    let login = |i: usize| format!("{}{i}", args.prefix);
    let mut conns = Vec::with_capacity(args.members);
    for i in 0..args.members {
        let node = args.stomp[i % args.stomp.len()];
        let conn = connect(node, &login(i), &["messages", "errors", "conversations"]).await;
        conns.push(conn.with_context(|| format!("member {i} on {node}"))?);
    }
    let members: Vec<String> = (0..args.members).map(login).collect();
    let conversation = create_group(&mut conns[0], &members).await?;
    // Every member holds the group (its `created` event) before the clock starts.
    for (i, conn) in conns.iter_mut().enumerate().skip(1) {
        wait_created(conn, &conversation)
            .await
            .with_context(|| format!("member {i}"))?;
    }
    tokio::time::sleep(Duration::from_secs(args.settle_seconds)).await;

    let interval = Duration::from_secs_f64(args.senders as f64 / args.rate as f64);
    let per_sender = (args.seconds as f64 / interval.as_secs_f64()).ceil() as u64;
    let tally = Arc::new(Mutex::new(Tally {
        stored: Some(histogram()),
        delivered: Some(histogram()),
        ..Tally::default()
    }));
    let nonce = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let epoch = Instant::now();
    let plan = Plan {
        conversation,
        senders: args.senders,
        per_sender,
        interval,
        drain: Duration::from_secs(args.drain_seconds),
        epoch,
        nonce,
    };
    let plan = Arc::new(plan);
    let mut tasks = Vec::with_capacity(args.members);
    for (i, conn) in conns.into_iter().enumerate() {
        tasks.push(tokio::spawn(run_member(
            conn,
            i,
            Arc::clone(&plan),
            Arc::clone(&tally),
        )));
    }
    for t in tasks {
        t.await??;
    }
    let elapsed = epoch.elapsed().as_secs_f64();
    report(&args, &tally.lock(), per_sender, elapsed)
}

/// What every member's task needs to know about the run.
struct Plan {
    conversation: String,
    senders: usize,
    per_sender: u64,
    interval: Duration,
    drain: Duration,
    epoch: Instant,
    nonce: u128,
}

fn report(args: &Args, t: &Tally, per_sender: u64, elapsed: f64) -> anyhow::Result<()> {
    let sent = per_sender * args.senders as u64;
    let expected = sent * (args.members as u64 - 1);
    let lost = expected.saturating_sub(t.deliveries);
    println!(
        "group bench: {} members on {} node(s), {} senders, target {} msgs/s for {} s ({} deliveries/s offered)",
        args.members,
        args.stomp.len(),
        args.senders,
        args.rate,
        args.seconds,
        args.rate * (args.members as u64 - 1)
    );
    println!(
        "sent {} | receipts {} | deliveries {} of {expected} | lost {lost} | duplicates {} | out of order {}",
        t.sent, t.receipts, t.deliveries, t.duplicates, t.out_of_order
    );
    let refused: u64 = t.refused.values().sum();
    if refused > 0 {
        println!("refused {refused} sends: {:?}", t.refused);
    }
    println!(
        "throughput {:.0} deliveries/s ({:.0} group msgs/s) over {elapsed:.1} s from the first send to the last delivery",
        t.deliveries as f64 / elapsed,
        t.receipts as f64 / elapsed
    );
    for (name, h) in [
        (
            "send→stored (RECEIPT)",
            t.stored.as_ref().context("histogram")?,
        ),
        ("send→delivered", t.delivered.as_ref().context("histogram")?),
    ] {
        print_latency(name, h);
    }
    if lost > 0 || t.duplicates > 0 || t.out_of_order > 0 || t.receipts != sent || refused > 0 {
        bail!("group bench saw loss, duplication, reordering, missing receipts or refused sends");
    }
    Ok(())
}

/// `/app/conversation.create` of a GROUP with `members` (the creator among them); returns its
/// id from the creator's `created` event.
async fn create_group(conn: &mut Conn, members: &[String]) -> anyhow::Result<String> {
    let body = serde_json::json!({ "type": "GROUP", "members": members, "name": "bench" });
    conn.send(
        Frame::new(Command::Send)
            .header("destination", "/app/conversation.create")
            .header("content-type", "application/json")
            .header("receipt", "create")
            .with_body(body.to_string()),
    )
    .await?;
    loop {
        let frame = next_frame(conn).await.context("creating the group")?;
        match frame.headers.get("subscription") {
            Some("conversations") => {
                let v: serde_json::Value = serde_json::from_slice(&frame.body)?;
                if v["event"] == "created" {
                    let id = v["conversation"]["conversationId"].as_str();
                    return id
                        .map(str::to_string)
                        .context("created event without an id");
                }
            }
            Some("errors") => bail!("create: {}", String::from_utf8_lossy(&frame.body)),
            _ => {}
        }
    }
}

/// Reads `conn` until its `created` event of `conversation`.
async fn wait_created(conn: &mut Conn, conversation: &str) -> anyhow::Result<()> {
    loop {
        let frame = next_frame(conn).await.context("waiting for the group")?;
        if frame.headers.get("subscription") == Some("conversations") {
            let v: serde_json::Value = serde_json::from_slice(&frame.body)?;
            if v["conversation"]["conversationId"] == conversation {
                return Ok(());
            }
        }
    }
}

/// The next frame (skipping heart-beats) within 30 s.
async fn next_frame(conn: &mut Conn) -> anyhow::Result<Frame> {
    loop {
        match tokio::time::timeout(Duration::from_secs(30), conn.next()).await {
            Ok(Some(Ok(Item::Frame(f)))) if f.command == Command::Error => {
                bail!("ERROR: {:?}", f.headers.get("message"))
            }
            Ok(Some(Ok(Item::Frame(f)))) => return Ok(f),
            Ok(Some(Ok(Item::HeartBeat))) => {}
            Ok(Some(Err(e))) => return Err(e.into()),
            Ok(None) => bail!("connection closed"),
            Err(_) => bail!("nothing for 30 s"),
        }
    }
}

/// Member `me`: sends its share (if it is one of the first `plan.senders`) and reads until it
/// has every RECEIPT of its own and every other sender's message, or `plan.drain` after the
/// last send.
async fn run_member(
    conn: Conn,
    me: usize,
    plan: Arc<Plan>,
    tally: Arc<Mutex<Tally>>,
) -> anyhow::Result<()> {
    let (mut sink, mut stream) = conn.split();
    let sending = me < plan.senders;
    let own = if sending { plan.per_sender } else { 0 };
    let others = plan.per_sender * (plan.senders - usize::from(sending)) as u64;
    let sent_at: Arc<Mutex<HashMap<String, u64>>> = Arc::new(Mutex::new(HashMap::new()));
    let writer = {
        let (plan, sent_at) = (Arc::clone(&plan), Arc::clone(&sent_at));
        tokio::spawn(async move {
            // Senders spread over the interval, not all on one tick.
            let phase = plan.interval.mul_f64(me as f64 / plan.senders as f64);
            let mut tick =
                tokio::time::interval_at(tokio::time::Instant::now() + phase, plan.interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            for seq in 0..own {
                tick.tick().await;
                let now = plan.epoch.elapsed().as_micros() as u64;
                let id = client_id(me, seq, plan.nonce);
                sent_at.lock().insert(id.clone(), now);
                let body = serde_json::json!({
                    "conversationId": plan.conversation,
                    "content": format!("{seq} {now}"),
                    "clientMessageId": id,
                });
                sink.send(chat_send(&body, id)).await?;
            }
            anyhow::Ok(sink)
        })
    };
    // Each other sender's messages must arrive in its order: the next seq expected from each.
    let mut next_seq: HashMap<usize, u64> = HashMap::new();
    let (mut receipts, mut received) = (0u64, 0u64);
    // The last send is due one interval (the phase) after `per_sender` intervals.
    let last_send = plan.interval * (plan.per_sender as u32 + 1);
    let deadline = tokio::time::Instant::from_std(plan.epoch + last_send + plan.drain);
    while receipts < own || received < others {
        let Ok(item) = tokio::time::timeout_at(deadline, stream.next()).await else {
            break;
        };
        let Some(item) = item else {
            bail!("member {me}: connection closed")
        };
        let Item::Frame(frame) = item? else { continue };
        let now = plan.epoch.elapsed().as_micros() as u64;
        match (frame.command, frame.headers.get("subscription")) {
            (Command::Receipt, _) => {
                let id = frame.headers.get("receipt-id").unwrap_or_default();
                if let Some(t0) = sent_at.lock().remove(id) {
                    receipts += 1;
                    let mut t = tally.lock();
                    t.receipts += 1;
                    t.sent += 1;
                    if let Some(h) = t.stored.as_mut() {
                        let _ = h.record(now.saturating_sub(t0).max(1));
                    }
                }
            }
            (Command::Message, Some("messages")) => {
                let v: serde_json::Value = serde_json::from_slice(&frame.body)?;
                let Some(sender) = v["clientMessageId"].as_str().and_then(sender_of) else {
                    continue;
                };
                if sender == me {
                    continue; // its own echo
                }
                let mut parts = v["content"].as_str().unwrap_or_default().split(' ');
                let seq: u64 = parts
                    .next()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(u64::MAX);
                let t0: u64 = parts.next().and_then(|s| s.parse().ok()).unwrap_or(now);
                let next = next_seq.entry(sender).or_default();
                let mut t = tally.lock();
                if seq < *next {
                    t.duplicates += 1;
                    continue;
                }
                if seq > *next {
                    t.out_of_order += 1;
                }
                *next = seq + 1;
                received += 1;
                t.deliveries += 1;
                if let Some(h) = t.delivered.as_mut() {
                    let _ = h.record(now.saturating_sub(t0).max(1));
                }
            }
            (Command::Message, Some("errors")) => {
                let v: serde_json::Value = serde_json::from_slice(&frame.body)?;
                let id = v["clientMessageId"].as_str().unwrap_or_default();
                if sent_at.lock().remove(id).is_some() {
                    receipts += 1;
                }
                let code = v["code"].as_str().unwrap_or("?").to_string();
                *tally.lock().refused.entry(code).or_default() += 1;
            }
            (Command::Error, _) => bail!("member {me}: ERROR {:?}", frame.headers.get("message")),
            _ => {}
        }
    }
    let _ = writer.await??;
    Ok(())
}
