//! The Markdown tables: the summary with Stompbox/peer ratios, and every run in detail.

use std::fmt::Write as _;

use super::cases::{BROKERS, Cases, ordered};
use super::metric::Metric;
use crate::outcome::Outcome;

/// Stompbox / peer, to three significant digits, with which way is better spelled out.
fn ratio(sb: Option<f64>, peer: Option<f64>, metric: Metric) -> String {
    let (Some(s), Some(p)) = (sb, peer) else {
        return "–".into();
    };
    if s <= 0.0 || p <= 0.0 {
        return "–".into();
    }
    let r = s / p;
    let digits = if r >= 100.0 {
        0
    } else {
        (2 - r.log10().floor() as i32).clamp(0, 8) as usize
    };
    let higher_better = metric == Metric::Throughput;
    let factor = if higher_better { r } else { 1.0 / r };
    let times = |f: f64| {
        if f >= 10.0 {
            format!("{f:.0}×")
        } else {
            format!("{f:.1}×")
        }
    };
    let verdict = if factor >= 1.0 {
        format!("{} better", times(factor))
    } else {
        format!("{} worse", times(1.0 / factor))
    };
    format!("{r:.digits$} ({verdict})")
}

fn cell(o: Option<&Outcome>, metric: Metric) -> (Option<f64>, String) {
    match o {
        None => (None, "not run".into()),
        Some(o) => {
            let v = metric.value(o);
            let mut s = v.map_or("–".into(), |v| metric.format(v));
            if !o.is_clean() {
                s.push_str(" ⚠");
            }
            (v, s)
        }
    }
}

pub(super) fn summary_table(cases: &Cases) -> String {
    let mut t = String::from(
        "| case | metric | stompbox | rabbitmq | activemq | stompbox/rabbitmq | stompbox/activemq |\n|---|---|---:|---:|---:|---:|---:|\n",
    );
    for name in ordered(cases) {
        let runs = &cases[name];
        let Some(any) = runs.values().next() else {
            continue;
        };
        let metric = Metric::of(any);
        let cells: Vec<_> = BROKERS.iter().map(|b| cell(runs.get(*b), metric)).collect();
        let _ = writeln!(
            t,
            "| {name} | {} | {} | {} | {} | {} | {} |",
            metric.label(),
            cells[0].1,
            cells[1].1,
            cells[2].1,
            ratio(cells[0].0, cells[1].0, metric),
            ratio(cells[0].0, cells[2].0, metric)
        );
    }
    t.push_str(
        "\n⚠ = the run lost, duplicated or reordered messages, or hit errors (see below).\n",
    );
    t
}

pub(super) fn detail_table(cases: &Cases) -> String {
    let mut t = String::from(
        "| case | broker | transport | conns | sent | delivered | deliveries/s | p50 µs | p90 µs | p99 µs | p99.9 µs | max µs | lost | dup | reordered | errors | generator CPU |\n|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|\n",
    );
    for name in ordered(cases) {
        for b in BROKERS {
            let Some(o) = cases[name].get(b) else {
                continue;
            };
            let l = o.latency.clone().unwrap_or_default();
            let lat = |v: f64| {
                if l.count > 0 {
                    format!("{v:.0}")
                } else {
                    "–".into()
                }
            };
            let errors = if o.errors.is_empty() {
                String::new()
            } else {
                format!(
                    "{} × {}",
                    o.errors.len(),
                    o.errors[0]
                        .replace('|', "/")
                        .chars()
                        .take(60)
                        .collect::<String>()
                )
            };
            let _ = writeln!(
                t,
                "| {name} | {b} | {} | {} | {} | {} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {} | {errors} | {:.0}% |",
                o.transport,
                o.connections,
                o.sent,
                o.delivered,
                o.throughput,
                lat(l.p50_us),
                lat(l.p90_us),
                lat(l.p99_us),
                lat(l.p999_us),
                lat(l.max_us),
                o.lost,
                o.duplicated,
                o.out_of_order,
                o.cpu_pct
            );
        }
    }
    let mut extra = String::new();
    for name in ordered(cases) {
        for b in BROKERS {
            if let Some(o) = cases[name].get(b) {
                if let (Some(before), Some(after)) = (o.rss_before_kib, o.rss_after_kib) {
                    let _ = writeln!(
                        extra,
                        "- {name} on {b}: broker RSS {before} KiB → {after} KiB with {} connections = {:.0} B/connection",
                        o.connections,
                        o.bytes_per_connection.unwrap_or(0.0)
                    );
                }
                if let Some(s) = o.all_back_s {
                    let _ = writeln!(
                        extra,
                        "- {name} on {b}: all {} back in {s:.2} s (per client p50 {} ms, p99 {} ms, {} failed attempts)",
                        o.connections,
                        o.params.get("back_p50_ms").map_or("?", String::as_str),
                        o.params.get("back_p99_ms").map_or("?", String::as_str),
                        o.params.get("retries").map_or("?", String::as_str),
                    );
                }
            }
        }
    }
    format!("{t}\n{extra}")
}
