//! What a hostile run reports: the broker's memory and descriptors before, during and after
//! the attacks, each attack's tally, and what the well-behaved client saw.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

use super::Args;
use super::attack::Tallies;
use super::victim::Victim;
use crate::usage;

/// The broker's resources at one moment, with the peaks since the last reset.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct Snapshot {
    pub rss_kib: u64,
    pub peak_rss_kib: u64,
    pub open_fds: u64,
    pub peak_open_fds: u64,
    /// CPU seconds the broker has used since it started.
    pub broker_cpu_s: f64,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub seconds: u64,
    pub flood_target: usize,
    pub slowloris_connections: usize,
    pub workers_per_attack: usize,
    pub baseline: Snapshot,
    pub during: Snapshot,
    pub after: Snapshot,
    pub attacks: Tallies,
    pub victim: Victim,
    pub broker_alive: bool,
    /// CPU seconds the load generator (attackers and victim) used during the attacks.
    pub attacker_cpu_s: f64,
}

impl Report {
    pub fn new(args: &Args) -> Self {
        Self {
            seconds: args.seconds,
            flood_target: args.flood,
            slowloris_connections: args.slowloris,
            workers_per_attack: args.workers,
            baseline: Snapshot::default(),
            during: Snapshot::default(),
            after: Snapshot::default(),
            attacks: Tallies::new(),
            victim: Victim::default(),
            broker_alive: false,
            attacker_cpu_s: 0.0,
        }
    }

    /// The broker lived, and the well-behaved client's every round trip and fresh connect
    /// succeeded.
    pub fn victim_served(&self) -> bool {
        self.broker_alive
            && self.victim.round_trips > 0
            && self.victim.failed_round_trips == 0
            && self.victim.failed_connects == 0
    }

    pub fn print(&self) {
        let mib = |kib: u64| kib as f64 / 1024.0;
        println!(
            "broker RSS MiB: baseline {:.1}, peak during {:.1}, after {:.1} (peak fds {})",
            mib(self.baseline.rss_kib),
            mib(self.during.peak_rss_kib),
            mib(self.after.rss_kib),
            self.during.peak_open_fds
        );
        println!(
            "CPU during the attacks: broker {:.1} s, load generator {:.1} s, over {} s on this machine",
            self.during.broker_cpu_s - self.baseline.broker_cpu_s,
            self.attacker_cpu_s,
            self.seconds
        );
        println!(
            "{:<22} {:>8} {:>8} {:>8} {:>8} {:>12} {:>9}",
            "attack", "conns", "ERROR", "closed", "admitted", "bytes sent", "longest s"
        );
        for (name, t) in &self.attacks {
            println!(
                "{:<22} {:>8} {:>8} {:>8} {:>8} {:>12} {:>9.1}",
                name,
                t.connections,
                t.refused_with_error,
                t.closed_by_broker,
                t.admitted,
                t.bytes_sent,
                t.longest_open_s
            );
        }
        let v = &self.victim;
        println!(
            "victim: {} round trips ({} failed), p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; \
             {} fresh connects ({} failed), p99 {:.2} ms",
            v.round_trips,
            v.failed_round_trips,
            v.round_trip_p50_ms,
            v.round_trip_p99_ms,
            v.round_trip_max_ms,
            v.fresh_connects,
            v.failed_connects,
            v.connect_p99_ms
        );
        if let Some(failure) = &v.first_failure {
            println!("victim's first failure: {failure}");
        }
    }
}

/// Samples the broker's RSS and descriptor count in the background.
pub struct Sampler {
    pid: u32,
    rss: Arc<AtomicU64>,
    peak_rss: Arc<AtomicU64>,
    fds: Arc<AtomicU64>,
    peak_fds: Arc<AtomicU64>,
}

impl Sampler {
    pub fn start(pid: u32, every: Duration) -> Self {
        let sampler = Self {
            pid,
            rss: Arc::default(),
            peak_rss: Arc::default(),
            fds: Arc::default(),
            peak_fds: Arc::default(),
        };
        let (rss, peak_rss, fds, peak_fds) = (
            sampler.rss.clone(),
            sampler.peak_rss.clone(),
            sampler.fds.clone(),
            sampler.peak_fds.clone(),
        );
        tokio::spawn(async move {
            loop {
                if let Some(kib) = usage::rss_kib(pid) {
                    rss.store(kib, Ordering::Relaxed);
                    peak_rss.fetch_max(kib, Ordering::Relaxed);
                }
                if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
                    let n = dir.count() as u64;
                    fds.store(n, Ordering::Relaxed);
                    peak_fds.fetch_max(n, Ordering::Relaxed);
                }
                tokio::time::sleep(every).await;
            }
        });
        sampler
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            rss_kib: self.rss.load(Ordering::Relaxed),
            peak_rss_kib: self.peak_rss.load(Ordering::Relaxed),
            open_fds: self.fds.load(Ordering::Relaxed),
            peak_open_fds: self.peak_fds.load(Ordering::Relaxed),
            broker_cpu_s: usage::cpu_seconds(self.pid).unwrap_or(0.0),
        }
    }

    /// Peaks start again from the current values (to see whether memory comes back).
    pub fn reset_peak(&self) {
        self.peak_rss
            .store(self.rss.load(Ordering::Relaxed), Ordering::Relaxed);
        self.peak_fds
            .store(self.fds.load(Ordering::Relaxed), Ordering::Relaxed);
    }
}
