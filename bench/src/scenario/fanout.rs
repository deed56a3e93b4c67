//! `fanout`: P publishers → D topics → S subscribers on each topic. Every publisher sends to
//! every topic round-robin; a stream is (publisher, topic).

use std::time::{Duration, Instant};

use crate::conn::{self, expand};
use crate::outcome::Outcome;
use crate::scenario::{
    Common, Lane, Sink, account, connect_all, drain, publish, receive, subscriber,
};
use crate::usage::Cpu;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    #[arg(long, default_value_t = 1)]
    pub publishers: usize,
    #[arg(long, default_value_t = 1)]
    pub topics: usize,
    /// Subscribers on each topic.
    #[arg(long, default_value_t = 100)]
    pub subscribers: usize,
    /// Total publish rate in msgs/s over all publishers; 0 = unbounded.
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Seconds of publishing.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    #[arg(long, default_value = "/topic/bench.{i}")]
    pub topic_template: String,
}

pub async fn run(c: &Common, a: &Args) -> anyhow::Result<Outcome> {
    let mut o = c.outcome("fanout");
    for (k, v) in [
        ("publishers", a.publishers.to_string()),
        ("topics", a.topics.to_string()),
        ("subscribers_per_topic", a.subscribers.to_string()),
        ("rate", a.rate.to_string()),
        ("duration_s", a.duration.to_string()),
        ("topic_template", a.topic_template.clone()),
    ] {
        o.params.insert(k.into(), v);
    }
    let target = c.target();
    let n_subs = a.topics * a.subscribers;
    let subs = connect_all(n_subs, |i| {
        subscriber(
            target.clone(),
            expand(&a.topic_template, i % a.topics),
            "auto",
            c.sub_headers(i),
        )
    })
    .await?;
    let publishers = connect_all(a.publishers, |_| {
        let t = target.clone();
        async move { conn::connect(&t, "0,0", None).await }
    })
    .await?;
    o.connections = (n_subs + a.publishers) as u64;

    let sink = Sink::new(n_subs);
    let receivers: Vec<_> = subs
        .into_iter()
        .enumerate()
        .map(|(i, (r, w))| tokio::spawn(receive(r, w, false, i, sink.clone())))
        .collect();

    let cpu0 = Cpu::now();
    let start = Instant::now();
    let rate_each = a.rate / a.publishers as f64;
    let duration = Duration::from_secs_f64(a.duration);
    let mut pub_tasks = Vec::new();
    let mut readers = Vec::new();
    for (p, (r, w)) in publishers.into_iter().enumerate() {
        readers.push(r);
        let lanes = (0..a.topics)
            .map(|d| Lane {
                writer_index: 0,
                destination: expand(&a.topic_template, d),
                stream: ((p as u64) << 32) | d as u64,
                sent: 0,
            })
            .collect();
        pub_tasks.push(tokio::spawn(publish(
            vec![w],
            lanes,
            rate_each,
            duration,
            c.body_size,
        )));
    }
    let mut sent_to_topic = vec![0u64; a.topics];
    let mut writers = Vec::new();
    for t in pub_tasks {
        match t.await? {
            Ok(p) => {
                for l in p.lanes {
                    sent_to_topic[(l.stream & 0xffff_ffff) as usize] += l.sent;
                    o.sent += l.sent;
                }
                if p.blocked {
                    o.params.insert("publisher_blocked".into(), "true".into());
                }
                writers.extend(p.writers);
            }
            Err(e) => o.errors.push(format!("publish: {e:#}")),
        }
    }
    let expected: Vec<u64> = (0..n_subs).map(|i| sent_to_topic[i % a.topics]).collect();
    let last = drain(
        &sink,
        expected.iter().sum(),
        Duration::from_secs_f64(c.drain_timeout),
    )
    .await;
    let window = last.duration_since(start);
    let mut got = Vec::new();
    for r in receivers {
        got.push(r.await?);
    }
    account(&mut o, &got, &expected, &sink);
    o.throughput = o.delivered as f64 / window.as_secs_f64().max(1e-9);
    o.set_cpu(Cpu::now().since(&cpu0), start.elapsed());
    drop((writers, readers));
    Ok(o)
}
