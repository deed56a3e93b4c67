//! `reconnect`: N subscribed clients drop their connections at the same instant and come back
//! with exponential backoff and full jitter; measures the time until every one has
//! re-subscribed (RECEIPT), then checks each gets a message published after.

use std::time::{Duration, Instant};

use rand::Rng;

use crate::conn::{self, Reader, Target, Writer, expand};
use crate::outcome::Outcome;
use crate::scenario::{Common, Lane, Sink, account, connect_all, drain, receive, source_ip};
use crate::stamp::{Stamp, now_ns};
use crate::tally::Latencies;
use crate::usage::{Cpu, raise_nofile};
use stomp_codec::{Command, Frame};

const PER_SOURCE_IP: usize = 10_000;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    #[arg(long, default_value_t = 1000)]
    pub clients: usize,
    /// First retry delay in ms (full jitter: a uniform wait in [0, delay)).
    #[arg(long, default_value_t = 100)]
    pub backoff_ms: u64,
    /// Largest retry delay in ms.
    #[arg(long, default_value_t = 5000)]
    pub backoff_max_ms: u64,
    /// Spread of the first reconnect attempt in ms (clients do not all return at once).
    #[arg(long, default_value_t = 1000)]
    pub jitter_ms: u64,
    #[arg(long, default_value = "/topic/reconnect.{i}")]
    pub topic_template: String,
}

pub async fn run(c: &Common, a: &Args) -> anyhow::Result<Outcome> {
    let mut o = c.outcome("reconnect");
    raise_nofile();
    for (k, v) in [
        ("clients", a.clients.to_string()),
        ("backoff_ms", a.backoff_ms.to_string()),
        ("backoff_max_ms", a.backoff_max_ms.to_string()),
        ("jitter_ms", a.jitter_ms.to_string()),
        ("topic_template", a.topic_template.clone()),
    ] {
        o.params.insert(k.into(), v);
    }
    let target = c.target();
    let first = connect_all(a.clients, |i| {
        let t = target.clone();
        let dest = expand(&a.topic_template, i);
        async move { resubscribe(&t, &dest, i).await }
    })
    .await?;
    o.connections = a.clients as u64;
    let cpu0 = Cpu::now();
    let start = Instant::now();
    // Drop every connection in the same instant: RST/FIN all at once, as a crashed node would.
    drop(first);
    let back_times = Latencies::new(8);
    let handles: Vec<_> = (0..a.clients)
        .map(|i| {
            let t = target.clone();
            let dest = expand(&a.topic_template, i);
            let a = a.clone();
            let times = back_times.clone();
            tokio::spawn(async move {
                let mut attempt = 0u32;
                let mut delay = rand::rng().random_range(0..a.jitter_ms.max(1));
                loop {
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                    match resubscribe(&t, &dest, i).await {
                        Ok(conn) => {
                            times.record(i, start.elapsed().as_nanos() as u64);
                            return Ok::<_, String>((conn, attempt));
                        }
                        Err(e) if attempt >= 20 => return Err(format!("gave up: {e:#}")),
                        Err(_) => {
                            attempt += 1;
                            let cap = (a.backoff_ms << attempt.min(16)).min(a.backoff_max_ms);
                            delay = rand::rng().random_range(0..cap.max(1));
                        }
                    }
                }
            })
        })
        .collect();
    let mut back = Vec::new();
    let mut retries = 0u64;
    for h in handles {
        match h.await? {
            Ok((conn, attempts)) => {
                retries += u64::from(attempts);
                back.push(conn);
            }
            Err(e) => o.errors.push(e),
        }
    }
    o.all_back_s = Some(start.elapsed().as_secs_f64());
    o.params.insert("retries".into(), retries.to_string());
    let mut lat: crate::outcome::Latency = (&back_times.merged()).into();
    lat.cdf.clear();
    o.params
        .insert("back_p50_ms".into(), format!("{:.0}", lat.p50_us / 1000.0));
    o.params
        .insert("back_p99_ms".into(), format!("{:.0}", lat.p99_us / 1000.0));

    // Resynced means routed again: one message to every client's topic must arrive.
    let sink = Sink::new(back.len());
    let n = back.len();
    let receivers: Vec<_> = back
        .into_iter()
        .enumerate()
        .map(|(i, (r, w))| tokio::spawn(receive(r, w, false, i, sink.clone())))
        .collect();
    let (pr, pw) = conn::connect(&target, "0,0", None).await?;
    let lanes = (0..a.clients)
        .map(|i| Lane {
            writer_index: 0,
            destination: expand(&a.topic_template, i),
            stream: i as u64,
            sent: 0,
        })
        .collect::<Vec<_>>();
    let (lanes, keep) = publish_once(pw, lanes, c.body_size).await?;
    o.sent = lanes.iter().map(|l| l.sent).sum();
    drain(&sink, n as u64, Duration::from_secs_f64(c.drain_timeout)).await;
    let mut got = Vec::new();
    for r in receivers {
        got.push(r.await?);
    }
    let expected = vec![1u64; got.len()];
    account(&mut o, &got, &expected, &sink);
    o.throughput = 0.0;
    o.set_cpu(Cpu::now().since(&cpu0), start.elapsed());
    drop((keep, pr));
    Ok(o)
}

/// One SEND per lane, as a single burst.
async fn publish_once(
    mut writer: Writer,
    mut lanes: Vec<Lane>,
    body_size: usize,
) -> anyhow::Result<(Vec<Lane>, Writer)> {
    for lane in &mut lanes {
        let stamp = Stamp {
            stream: lane.stream,
            seq: 0,
            sent_ns: now_ns(),
        };
        let frame = Frame::new(Command::Send)
            .header("destination", lane.destination.as_str())
            .with_body(stamp.body(body_size));
        writer.queue(&frame);
        lane.sent = 1;
    }
    writer.flush().await?;
    Ok((lanes, writer))
}

async fn resubscribe(t: &Target, dest: &str, i: usize) -> anyhow::Result<(Reader, Writer)> {
    let (mut r, mut w) = conn::connect(t, "0,0", Some(source_ip(i, PER_SOURCE_IP))).await?;
    conn::subscribe(&mut r, &mut w, dest, "0", "auto", &[]).await?;
    Ok((r, w))
}
