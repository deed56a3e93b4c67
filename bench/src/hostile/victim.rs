//! The well-behaved client: one long-lived connection doing a publish → MESSAGE round trip
//! every few milliseconds, and a fresh connection (CONNECT → CONNECTED → DISCONNECT) every
//! second. Anything that does not come back within [`PATIENCE`] is a failure.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;
use stomp_codec::{Command, Frame};
use tokio_util::sync::CancellationToken;

use crate::conn::{self, Target};

/// Pause between round trips.
const EVERY: Duration = Duration::from_millis(20);
/// How often a fresh connection is tried.
const FRESH_EVERY: Duration = Duration::from_secs(1);
/// A round trip or connect slower than this counts as failed.
const PATIENCE: Duration = Duration::from_secs(2);

#[derive(Debug, Default, Serialize)]
pub struct Victim {
    pub round_trips: u64,
    pub failed_round_trips: u64,
    pub round_trip_p50_ms: f64,
    pub round_trip_p99_ms: f64,
    pub round_trip_max_ms: f64,
    pub fresh_connects: u64,
    pub failed_connects: u64,
    pub connect_p99_ms: f64,
    pub first_failure: Option<String>,
}

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

pub async fn run(
    target: Target,
    source: Ipv4Addr,
    stop: CancellationToken,
) -> anyhow::Result<Victim> {
    let mut victim = Victim::default();
    let mut round_trips = Histogram::<u64>::new(3)?;
    let mut connects = Histogram::<u64>::new(3)?;
    let mut session = None;
    let mut next_fresh = Instant::now();
    let mut seq = 0u64;
    let fail = |victim: &mut Victim, what: String| {
        victim.first_failure.get_or_insert(what);
    };
    while !stop.is_cancelled() {
        if Instant::now() >= next_fresh {
            next_fresh += FRESH_EVERY;
            let started = Instant::now();
            victim.fresh_connects += 1;
            match tokio::time::timeout(PATIENCE, fresh(&target, source)).await {
                Ok(Ok(())) => connects.record(started.elapsed().as_micros() as u64)?,
                Ok(Err(e)) => {
                    victim.failed_connects += 1;
                    fail(&mut victim, format!("fresh connect: {e:#}"));
                }
                Err(_) => {
                    victim.failed_connects += 1;
                    fail(&mut victim, "fresh connect timed out".into());
                }
            }
        }
        if session.is_none() {
            match open(&target, source).await {
                Ok(s) => session = Some(s),
                Err(e) => {
                    victim.failed_round_trips += 1;
                    fail(&mut victim, format!("victim connect: {e:#}"));
                    tokio::time::sleep(EVERY).await;
                    continue;
                }
            }
        }
        let (reader, writer, destination) = session.as_mut().expect("opened above");
        seq += 1;
        let started = Instant::now();
        let send = Frame::new(Command::Send)
            .header("destination", destination.as_str())
            .header("seq", seq.to_string())
            .with_body("ping");
        let outcome = tokio::time::timeout(PATIENCE, async {
            writer.send(&send).await?;
            loop {
                let frame = reader.frame(PATIENCE).await?;
                if frame.command == Command::Message
                    && frame.headers.get("seq") == Some(seq.to_string().as_str())
                {
                    return anyhow::Ok(());
                }
            }
        })
        .await;
        match outcome {
            Ok(Ok(())) => {
                victim.round_trips += 1;
                round_trips.record(started.elapsed().as_micros() as u64)?;
            }
            Ok(Err(e)) => {
                victim.failed_round_trips += 1;
                fail(&mut victim, format!("round trip: {e:#}"));
                session = None;
            }
            Err(_) => {
                victim.failed_round_trips += 1;
                fail(&mut victim, "round trip timed out".into());
                session = None;
            }
        }
        tokio::time::sleep(EVERY).await;
    }
    victim.round_trip_p50_ms = ms(&round_trips, 0.5);
    victim.round_trip_p99_ms = ms(&round_trips, 0.99);
    victim.round_trip_max_ms = round_trips.max() as f64 / 1000.0;
    victim.connect_p99_ms = ms(&connects, 0.99);
    Ok(victim)
}

type Session = (conn::Reader, conn::Writer, String);

async fn open(target: &Target, source: Ipv4Addr) -> anyhow::Result<Session> {
    let (mut reader, mut writer) = conn::connect(target, "0,0", Some(source)).await?;
    let destination = format!("/topic/hostile-victim-{}", std::process::id());
    conn::subscribe(&mut reader, &mut writer, &destination, "0", "auto", &[]).await?;
    Ok((reader, writer, destination))
}

async fn fresh(target: &Target, source: Ipv4Addr) -> anyhow::Result<()> {
    let (mut reader, mut writer) = conn::connect(target, "0,0", Some(source)).await?;
    writer
        .send(&Frame::new(Command::Disconnect).header("receipt", "bye"))
        .await?;
    reader.receipt("bye", PATIENCE).await
}
