//! The performance targets (issue 6), each met or missed by Stompbox's run of its case.

use std::fmt::Write as _;

use super::cases::Cases;

pub(super) fn targets(cases: &Cases) -> String {
    let get = |case: &str| cases.get(case).and_then(|r| r.get("stompbox"));
    let mut t = String::from("| target | measured | verdict |\n|---|---|---|\n");
    let mut row = |what: &str, measured: Option<(String, bool)>| {
        let (m, v) = match measured {
            Some((m, ok)) => (m, if ok { "met" } else { "**missed**" }),
            None => ("not run".into(), "–"),
        };
        let _ = writeln!(t, "| {what} | {m} | {v} |");
    };
    row(
        "≤ 2 KiB broker RSS per idle WebSocket connection",
        get("idle-ws").and_then(|o| {
            o.bytes_per_connection.map(|b| {
                (
                    format!("{b:.0} B/connection over {} connections", o.connections),
                    b <= 2048.0 && o.is_clean(),
                )
            })
        }),
    );
    for (case, what) in [
        (
            "fanout-1x100",
            "fan-out 1→100 unbounded: ≥ 1M deliveries/s, no loss",
        ),
        (
            "fanout-10k-100",
            "fan-out 1→100 at 10k msgs/s: ≥ 1M deliveries/s, no loss",
        ),
    ] {
        row(
            what,
            get(case).map(|o| {
                (
                    format!(
                        "{:.0} deliveries/s, lost {}, p99 {:.0} µs",
                        o.throughput,
                        o.lost,
                        o.latency.as_ref().map_or(0.0, |l| l.p99_us)
                    ),
                    o.throughput >= 0.95e6 && o.is_clean(),
                )
            }),
        );
    }
    for (case, what) in [
        ("fanout-10k-10", "10k msgs/s → 10 subscribers: p99 ≤ 1 ms"),
        ("pairs-1k", "pairs, 1,000 clients at 5k msgs/s: p99 < 1 ms"),
        (
            "pairs-big",
            "pairs, 10,000 clients at 5k msgs/s: p99 < 1 ms",
        ),
    ] {
        row(
            what,
            get(case).and_then(|o| {
                o.latency.as_ref().map(|l| {
                    (
                        format!(
                            "p99 {:.0} µs ({} clients/subscribers)",
                            l.p99_us, o.connections
                        ),
                        l.p99_us <= 1000.0 && o.is_clean(),
                    )
                })
            }),
        );
    }
    t
}
