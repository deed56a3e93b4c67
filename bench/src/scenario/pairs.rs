//! `pairs`: N clients in pairs (2k, 2k+1), each SENDing to its peer's personal destination
//! (one-to-one chat) at a fixed total rate. A stream is a sending client.

use std::time::{Duration, Instant};

use crate::conn::expand;
use crate::outcome::Outcome;
use crate::scenario::{
    Common, Lane, Sink, account, connect_all, drain, publish, receive, subscriber,
};
use crate::usage::Cpu;

/// Pacer tasks that share the sending: one per core keeps the timer work parallel.
const PACERS: usize = 2;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Clients (rounded down to an even number).
    #[arg(long, default_value_t = 1000)]
    pub clients: usize,
    /// Total SEND rate over all clients, msgs/s.
    #[arg(long, default_value_t = 5000.0)]
    pub rate: f64,
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Client i's personal destination.
    #[arg(long, default_value = "/queue/pair.{i}")]
    pub peer_template: String,
}

pub async fn run(c: &Common, a: &Args) -> anyhow::Result<Outcome> {
    let n = (a.clients / 2 * 2).max(2);
    let mut o = c.outcome("pairs");
    for (k, v) in [
        ("clients", n.to_string()),
        ("rate", a.rate.to_string()),
        ("duration_s", a.duration.to_string()),
        ("peer_template", a.peer_template.clone()),
    ] {
        o.params.insert(k.into(), v);
    }
    crate::usage::raise_nofile();
    let target = c.target();
    let clients = connect_all(n, |i| {
        subscriber(
            target.clone(),
            expand(&a.peer_template, i),
            "auto",
            c.sub_headers(i),
        )
    })
    .await?;
    o.connections = n as u64;
    let sink = Sink::new(n);
    let mut groups: Vec<(Vec<_>, Vec<Lane>)> =
        (0..PACERS).map(|_| (Vec::new(), Vec::new())).collect();
    let mut receivers = Vec::with_capacity(n);
    for (i, (r, w)) in clients.into_iter().enumerate() {
        let (writers, lanes) = &mut groups[i % PACERS];
        // The write half goes to a pacer, the read half to its own receive task.
        lanes.push(Lane {
            writer_index: writers.len(),
            destination: expand(&a.peer_template, i ^ 1),
            stream: i as u64,
            sent: 0,
        });
        writers.push(w);
        receivers.push(r);
    }
    let cpu0 = Cpu::now();
    let start = Instant::now();
    let duration = Duration::from_secs_f64(a.duration);
    let pacers: Vec<_> = groups
        .into_iter()
        .map(|(writers, lanes)| {
            tokio::spawn(publish(
                writers,
                lanes,
                a.rate / PACERS as f64,
                duration,
                c.body_size,
            ))
        })
        .collect();
    let handles: Vec<_> = receivers
        .into_iter()
        .enumerate()
        .map(|(i, r)| tokio::spawn(receive_only(r, i, sink.clone())))
        .collect();
    let mut sent_by = vec![0u64; n];
    let mut keep = Vec::new();
    for p in pacers {
        match p.await? {
            Ok(p) => {
                for l in p.lanes {
                    sent_by[l.stream as usize] = l.sent;
                    o.sent += l.sent;
                }
                if p.blocked {
                    o.params.insert("publisher_blocked".into(), "true".into());
                }
                keep.extend(p.writers);
            }
            Err(e) => o.errors.push(format!("publish: {e:#}")),
        }
    }
    let expected: Vec<u64> = (0..n).map(|j| sent_by[j ^ 1]).collect();
    let last = drain(
        &sink,
        expected.iter().sum(),
        Duration::from_secs_f64(c.drain_timeout),
    )
    .await;
    let mut got = Vec::new();
    for h in handles {
        got.push(h.await?);
    }
    account(&mut o, &got, &expected, &sink);
    o.throughput = o.delivered as f64 / last.duration_since(start).as_secs_f64().max(1e-9);
    o.set_cpu(Cpu::now().since(&cpu0), start.elapsed());
    drop(keep);
    Ok(o)
}

/// The receive loop for a client whose writer is owned by a pacer.
async fn receive_only(
    reader: crate::conn::Reader,
    who: usize,
    sink: Sink,
) -> crate::scenario::Received {
    receive(reader, crate::conn::Writer::Detached, false, who, sink).await
}
