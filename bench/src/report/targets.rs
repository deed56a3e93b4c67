//! The performance targets (issue 17, and issue 6's still worded for this run's cases), each
//! met or missed by Stompbox's run of its case.

use std::fmt::Write as _;

use super::cases::Cases;
use crate::outcome::Outcome;

/// How a target reads its case's outcome: what was measured, and whether it is met.
type Verdict = fn(&Outcome) -> Option<(String, bool)>;

/// (issue, case, target, verdict), in table order.
const TARGETS: [(&str, &str, &str, Verdict); 7] = [
    (
        "17",
        "idle-ws",
        "≤ 2,048 B broker RSS per idle WebSocket connection",
        idle,
    ),
    (
        "17",
        "idle-tcp",
        "≤ 2,048 B broker RSS per idle TCP connection",
        idle,
    ),
    (
        "17",
        "fanout-1x100",
        "fan-out 1→100 unbounded, 128-byte bodies: ≥ 2M deliveries/s, no loss",
        two_million,
    ),
    (
        "17",
        "fanout-10k-10",
        "10k msgs/s → 10 subscribers: p99 ≤ 1 ms",
        p99_1ms,
    ),
    (
        "6",
        "fanout-10k-100",
        "fan-out 1→100 at 10k msgs/s (1M deliveries/s offered): ≥ 95 % of them per second of the run (its ramp and drain included), no loss",
        one_million_offered,
    ),
    (
        "6",
        "pairs-1k",
        "pairs, 1,000 clients at 5k msgs/s: p99 ≤ 1 ms",
        p99_1ms,
    ),
    (
        "6",
        "pairs-big",
        "pairs, 10,000 clients at 5k msgs/s: p99 ≤ 1 ms",
        p99_1ms,
    ),
];

pub(super) fn targets(cases: &Cases) -> String {
    let mut t =
        String::from("| issue | target | case | measured | verdict |\n|---|---|---|---|---|\n");
    for (issue, case, what, verdict) in TARGETS {
        let outcome = cases.get(case).and_then(|r| r.get("stompbox"));
        let (m, v) = match outcome.and_then(verdict) {
            Some((m, ok)) => (m, if ok { "met" } else { "**missed**" }),
            None => ("not run".into(), "–"),
        };
        let _ = writeln!(t, "| {issue} | {what} | {case} | {m} | {v} |");
    }
    t
}

fn idle(o: &Outcome) -> Option<(String, bool)> {
    let b = o.bytes_per_connection?;
    Some((
        format!("{b:.0} B/connection over {} connections", o.connections),
        b <= 2048.0 && o.is_clean(),
    ))
}

fn throughput(o: &Outcome, at_least: f64) -> Option<(String, bool)> {
    Some((
        format!(
            "{:.0} deliveries/s, lost {}, p99 {:.0} µs",
            o.throughput,
            o.lost,
            o.latency.as_ref().map_or(0.0, |l| l.p99_us)
        ),
        o.throughput >= at_least && o.is_clean(),
    ))
}

fn two_million(o: &Outcome) -> Option<(String, bool)> {
    throughput(o, 2.0e6)
}

/// 10k msgs/s × 100 offers exactly 1M deliveries/s; the run's ramp and drain take a little.
fn one_million_offered(o: &Outcome) -> Option<(String, bool)> {
    throughput(o, 0.95e6)
}

fn p99_1ms(o: &Outcome) -> Option<(String, bool)> {
    let l = o.latency.as_ref()?;
    Some((
        format!(
            "p99 {:.0} µs ({} clients/subscribers)",
            l.p99_us, o.connections
        ),
        l.p99_us <= 1000.0 && o.is_clean(),
    ))
}
