//! What one scenario run measured: the JSON written by `--json` and the human summary.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::usage::Cpu;

/// Latency percentiles in microseconds plus a CDF for plotting.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Latency {
    pub count: u64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
    pub mean_us: f64,
    /// (latency µs, fraction of messages at or below it)
    pub cdf: Vec<(f64, f64)>,
}

impl From<&Histogram<u64>> for Latency {
    fn from(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Latency::default();
        }
        let q = |p: f64| h.value_at_quantile(p) as f64;
        let cdf = [
            0.0, 0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.97, 0.99, 0.995,
            0.999, 0.9995, 0.9999, 1.0,
        ]
        .iter()
        .map(|&p| (q(p), p))
        .collect();
        Latency {
            count: h.len(),
            p50_us: q(0.5),
            p90_us: q(0.9),
            p99_us: q(0.99),
            p999_us: q(0.999),
            max_us: h.max() as f64,
            mean_us: h.mean(),
            cdf,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Outcome {
    pub scenario: String,
    pub broker: String,
    pub transport: String,
    pub params: BTreeMap<String, String>,
    pub wall_s: f64,
    pub sent: u64,
    pub expected: u64,
    pub delivered: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub out_of_order: u64,
    /// Deliveries per second over the publishing window plus drain.
    pub throughput: f64,
    pub latency: Option<Latency>,
    pub connections: u64,
    pub rss_before_kib: Option<u64>,
    pub rss_after_kib: Option<u64>,
    pub bytes_per_connection: Option<f64>,
    pub all_back_s: Option<f64>,
    pub cpu_user_s: f64,
    pub cpu_system_s: f64,
    /// Load generator CPU as a share of one core over the wall time (200% = both cores here).
    pub cpu_pct: f64,
    pub errors: Vec<String>,
}

impl Outcome {
    pub fn set_cpu(&mut self, cpu: Cpu, wall: Duration) {
        self.cpu_user_s = cpu.user.as_secs_f64();
        self.cpu_system_s = cpu.system.as_secs_f64();
        self.wall_s = wall.as_secs_f64();
        if self.wall_s > 0.0 {
            self.cpu_pct = 100.0 * (self.cpu_user_s + self.cpu_system_s) / self.wall_s;
        }
    }

    /// No loss, no duplicate, no reorder, no error.
    pub fn is_clean(&self) -> bool {
        self.lost == 0 && self.duplicated == 0 && self.out_of_order == 0 && self.errors.is_empty()
    }

    pub fn print(&self) {
        println!(
            "{} on {} ({}) {}",
            self.scenario,
            self.broker,
            self.transport,
            self.params
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        println!(
            "  sent {}  expected {}  delivered {}  lost {}  dup {}  reordered {}",
            self.sent, self.expected, self.delivered, self.lost, self.duplicated, self.out_of_order
        );
        println!(
            "  throughput {:.0} deliveries/s over {:.2}s",
            self.throughput, self.wall_s
        );
        if let Some(l) = &self.latency {
            println!(
                "  latency µs  p50 {:.0}  p90 {:.0}  p99 {:.0}  p99.9 {:.0}  max {:.0}  (n={})",
                l.p50_us, l.p90_us, l.p99_us, l.p999_us, l.max_us, l.count
            );
        }
        if let (Some(b), Some(a)) = (self.rss_before_kib, self.rss_after_kib) {
            println!(
                "  broker RSS {b} KiB -> {a} KiB over {} connections = {:.0} B/connection",
                self.connections,
                self.bytes_per_connection.unwrap_or(0.0)
            );
        }
        if let Some(t) = self.all_back_s {
            println!("  all {} clients back after {t:.3}s", self.connections);
        }
        println!(
            "  load generator CPU user {:.2}s sys {:.2}s = {:.0}% of one core",
            self.cpu_user_s, self.cpu_system_s, self.cpu_pct
        );
        for e in self.errors.iter().take(5) {
            println!("  error: {e}");
        }
        if self.errors.len() > 5 {
            println!("  ... {} errors in all", self.errors.len());
        }
    }
}
