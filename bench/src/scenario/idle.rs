//! `idle`: C connections that CONNECT (with heart-beats), SUBSCRIBE once and sit there; the
//! broker's RSS before and after gives its memory per idle connection.

use std::time::{Duration, Instant};

use stomp_codec::Item;
use tokio_util::sync::CancellationToken;

use crate::conn::{self, Reader, Writer, expand};
use crate::outcome::Outcome;
use crate::scenario::{Common, connect_all, source_ip};
use crate::usage::{Cpu, raise_nofile, rss_kib};

/// Connections per source address: well under the ~28k ephemeral ports of one address.
const PER_SOURCE_IP: usize = 10_000;
/// Time for the broker's allocator to settle after the last SUBSCRIBE before reading RSS.
const SETTLE: Duration = Duration::from_secs(2);

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    #[arg(long, default_value_t = 1000)]
    pub connections: usize,
    /// Seconds to hold the connections after they are all up.
    #[arg(long, default_value_t = 10.0)]
    pub hold: f64,
    /// CONNECT heart-beat header `cx,cy` in ms.
    #[arg(long, default_value = "10000,10000")]
    pub heart_beat: String,
    #[arg(long, default_value = "/topic/idle.{i}")]
    pub topic_template: String,
    /// CONNECT `login` per connection (`{i}` expands), instead of `--login` for all: with
    /// `--topic-template /user/queue/messages`, each connection is its own chat user
    /// subscribed to its user queue, as the idle target (issue 17) describes.
    #[arg(long)]
    pub login_template: Option<String>,
}

pub async fn run(c: &Common, a: &Args) -> anyhow::Result<Outcome> {
    let mut o = c.outcome("idle");
    let nofile = raise_nofile();
    for (k, v) in [
        ("connections", a.connections.to_string()),
        ("hold_s", a.hold.to_string()),
        ("heart_beat", a.heart_beat.clone()),
        ("topic_template", a.topic_template.clone()),
        (
            "login_template",
            a.login_template.clone().unwrap_or_else(|| c.login.clone()),
        ),
        ("bench_nofile", nofile.to_string()),
    ] {
        o.params.insert(k.into(), v);
    }
    let cpu0 = Cpu::now();
    let start = Instant::now();
    o.rss_before_kib = c.broker_pid.and_then(rss_kib);
    let target = c.target();
    let hb = a.heart_beat.clone();
    let send_every = a
        .heart_beat
        .split(',')
        .next()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|&v| v > 0)
        .map(Duration::from_millis);
    let stop = CancellationToken::new();
    // Each connection starts heart-beating as soon as it is subscribed: with thousands to set
    // up, the first would otherwise sit silent past the broker's heart-beat timeout.
    let holders = connect_all(a.connections, |i| {
        let mut t = target.clone();
        if let Some(login) = &a.login_template {
            t.login = expand(login, i);
        }
        let dest = expand(&a.topic_template, i);
        let hb = hb.clone();
        let extra = c.sub_headers(i);
        let stop = stop.clone();
        async move {
            let (mut r, mut w) = conn::connect(&t, &hb, Some(source_ip(i, PER_SOURCE_IP))).await?;
            conn::subscribe(&mut r, &mut w, &dest, "0", "auto", &extra).await?;
            Ok(tokio::spawn(hold(r, w, send_every, stop)))
        }
    })
    .await?;
    o.connections = holders.len() as u64;
    let connect_time = start.elapsed();
    o.params.insert(
        "connect_all_s".into(),
        format!("{:.2}", connect_time.as_secs_f64()),
    );
    tokio::time::sleep(SETTLE).await;
    o.rss_after_kib = c.broker_pid.and_then(rss_kib);
    if let (Some(b), Some(a)) = (o.rss_before_kib, o.rss_after_kib) {
        o.bytes_per_connection = Some((a as f64 - b as f64) * 1024.0 / o.connections.max(1) as f64);
    }
    tokio::time::sleep(Duration::from_secs_f64(a.hold).saturating_sub(SETTLE)).await;
    // Again at the end of the hold: with a hold past ≈ 12 s this is the idle steady state, once
    // the broker's blocking-pool threads (CONNECT's store reads; tokio keeps an idle one 10 s,
    // with its stack and allocator cache) have exited. The figure above stays the headline.
    if let (Some(b), Some(end)) = (o.rss_before_kib, c.broker_pid.and_then(rss_kib)) {
        let per_connection = (end as f64 - b as f64) * 1024.0 / o.connections.max(1) as f64;
        o.params.insert("rss_end_kib".into(), end.to_string());
        o.params.insert(
            "end_bytes_per_connection".into(),
            format!("{per_connection:.0}"),
        );
    }
    stop.cancel();
    for h in holders {
        if let Some(e) = h.await? {
            o.errors.push(e);
        }
    }
    o.set_cpu(Cpu::now().since(&cpu0), start.elapsed());
    Ok(o)
}

/// Keeps one connection alive: heart-beats out, anything in is read and dropped. Returns why
/// it ended early, if it did.
async fn hold(
    mut reader: Reader,
    mut writer: Writer,
    send_every: Option<Duration>,
    stop: CancellationToken,
) -> Option<String> {
    let beat = send_every.unwrap_or(Duration::from_secs(3600));
    let mut next_beat = tokio::time::Instant::now() + beat;
    loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => return None,
            _ = tokio::time::sleep_until(next_beat) => {
                writer.queue_heartbeat();
                if let Err(e) = writer.flush().await {
                    return Some(format!("heart-beat: {e}"));
                }
                next_beat += beat;
            }
            item = reader.next() => match item {
                Ok(Some(Item::HeartBeat)) | Ok(Some(Item::Frame(_))) => {}
                Ok(None) => return Some("broker closed an idle connection".into()),
                Err(e) => return Some(format!("idle read: {e}")),
            },
        }
    }
}
