//! `ack`: publishers → Q queues, one `client-individual` consumer per queue ACKing every
//! MESSAGE. A stream is a queue (one consumer each, so order is checkable).

use std::time::{Duration, Instant};

use crate::conn::{self, expand};
use crate::outcome::Outcome;
use crate::scenario::{
    Common, Lane, Sink, account, connect_all, drain, publish, receive, subscriber,
};
use crate::usage::Cpu;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    #[arg(long, default_value_t = 10)]
    pub queues: usize,
    /// Total SEND rate, msgs/s; 0 = unbounded (a broker with a queue cap may refuse).
    #[arg(long, default_value_t = 10000.0)]
    pub rate: f64,
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    #[arg(long, default_value = "/queue/bench.ack.{i}")]
    pub queue_template: String,
}

pub async fn run(c: &Common, a: &Args) -> anyhow::Result<Outcome> {
    let mut o = c.outcome("ack");
    for (k, v) in [
        ("queues", a.queues.to_string()),
        ("rate", a.rate.to_string()),
        ("duration_s", a.duration.to_string()),
        ("queue_template", a.queue_template.clone()),
    ] {
        o.params.insert(k.into(), v);
    }
    let target = c.target();
    let consumers = connect_all(a.queues, |i| {
        subscriber(
            target.clone(),
            expand(&a.queue_template, i),
            "client-individual",
            c.sub_headers(i),
        )
    })
    .await?;
    let (pub_reader, pub_writer) = conn::connect(&target, "0,0", None).await?;
    o.connections = a.queues as u64 + 1;
    let sink = Sink::new(a.queues);
    let handles: Vec<_> = consumers
        .into_iter()
        .enumerate()
        .map(|(i, (r, w))| tokio::spawn(receive(r, w, true, i, sink.clone())))
        .collect();
    let lanes = (0..a.queues)
        .map(|q| Lane {
            writer_index: 0,
            destination: expand(&a.queue_template, q),
            stream: q as u64,
            sent: 0,
        })
        .collect();
    let cpu0 = Cpu::now();
    let start = Instant::now();
    let mut expected = vec![0u64; a.queues];
    let mut keep = Vec::new();
    match publish(
        vec![pub_writer],
        lanes,
        a.rate,
        Duration::from_secs_f64(a.duration),
        c.body_size,
    )
    .await
    {
        Ok(p) => {
            for l in p.lanes {
                expected[l.stream as usize] = l.sent;
                o.sent += l.sent;
            }
            if p.blocked {
                o.params.insert("publisher_blocked".into(), "true".into());
            }
            keep.extend(p.writers);
        }
        Err(e) => o.errors.push(format!("publish: {e:#}")),
    }
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
    drop((keep, pub_reader));
    Ok(o)
}
