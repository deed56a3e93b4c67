//! `Metric`: the one number each case is judged by (throughput, p99, bytes per connection or
//! time until all are back), read from an outcome, labelled and formatted the same everywhere.

use crate::outcome::Outcome;

/// The number a case is judged by.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Metric {
    Throughput,
    P99,
    BytesPerConnection,
    AllBack,
}

impl Metric {
    pub(super) fn of(o: &Outcome) -> Metric {
        match o.params.get("kind").map(String::as_str) {
            Some("idle") => Metric::BytesPerConnection,
            Some("reconnect") => Metric::AllBack,
            Some("fanout") if o.params.get("rate").is_some_and(|r| r == "0") => Metric::Throughput,
            _ => Metric::P99,
        }
    }

    pub(super) fn value(self, o: &Outcome) -> Option<f64> {
        match self {
            Metric::Throughput => Some(o.throughput),
            Metric::P99 => o.latency.as_ref().map(|l| l.p99_us),
            Metric::BytesPerConnection => o.bytes_per_connection,
            Metric::AllBack => o.all_back_s,
        }
    }

    pub(super) fn label(self) -> &'static str {
        match self {
            Metric::Throughput => "deliveries/s (higher is better)",
            Metric::P99 => "p99 latency µs (lower is better)",
            Metric::BytesPerConnection => "broker bytes/connection (lower is better)",
            Metric::AllBack => "s until all back (lower is better)",
        }
    }

    pub(super) fn format(self, v: f64) -> String {
        match self {
            Metric::Throughput => format!("{v:.0}"),
            Metric::P99 => format!("{v:.0}"),
            Metric::BytesPerConnection => format!("{v:.0}"),
            Metric::AllBack => format!("{v:.2}"),
        }
    }
}
