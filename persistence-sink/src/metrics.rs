//! The sink's metrics: counters since start and the persistence lag (Kafka record timestamp →
//! the batch's offsets committed) over a window. Updated once per committed batch, read by the
//! `stompbox-sink` binary's periodic log line and its Prometheus endpoint, and by the bench.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use hdrhistogram::Histogram;

/// Lags are recorded in milliseconds up to an hour (anything above is clamped): an outage
/// longer than that shows as "an hour", which is enough to alert on.
const LAG_MAX_MS: u64 = 3_600_000;

#[derive(Debug)]
pub struct SinkMetrics {
    /// Records of committed batches (messages, statuses, dead letters).
    pub records: AtomicU64,
    pub messages_inserted: AtomicU64,
    /// Messages already in PostgreSQL (replays).
    pub duplicates_skipped: AtomicU64,
    pub delivered: AtomicU64,
    pub read_marks: AtomicU64,
    pub batches: AtomicU64,
    pub dead_letters: AtomicU64,
    /// Waits on PostgreSQL or the dead-letter topic being unavailable.
    pub transient_retries: AtomicU64,
    /// Batches whose offset commit was (partly) dropped after a rebalance.
    pub commit_failures: AtomicU64,
    window: Mutex<Histogram<u64>>,
    last: Mutex<LagSummary>,
}

/// Persistence lag percentiles of one window, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LagSummary {
    pub samples: u64,
    pub p50_ms: u64,
    pub p99_ms: u64,
    pub max_ms: u64,
}

impl From<&Histogram<u64>> for LagSummary {
    fn from(h: &Histogram<u64>) -> Self {
        LagSummary {
            samples: h.len(),
            p50_ms: h.value_at_quantile(0.5),
            p99_ms: h.value_at_quantile(0.99),
            max_ms: h.max(),
        }
    }
}

impl Default for SinkMetrics {
    fn default() -> Self {
        SinkMetrics {
            records: AtomicU64::new(0),
            messages_inserted: AtomicU64::new(0),
            duplicates_skipped: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            read_marks: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            dead_letters: AtomicU64::new(0),
            transient_retries: AtomicU64::new(0),
            commit_failures: AtomicU64::new(0),
            window: Mutex::new(new_histogram()),
            last: Mutex::new(LagSummary::default()),
        }
    }
}

fn new_histogram() -> Histogram<u64> {
    // 3 significant digits up to an hour: a few tens of KiB, 0.1 % error. Constant bounds that
    // are valid (low ≥ 1, high ≥ 2·low, precision ≤ 5), so this cannot fail.
    Histogram::new_with_bounds(1, LAG_MAX_MS, 3).expect("valid histogram bounds")
}

impl SinkMetrics {
    /// Records the lags of a committed batch's records (`now_ms − timestamp`).
    pub fn record_lags(&self, now_ms: i64, timestamps: impl Iterator<Item = i64>) {
        let Ok(mut window) = self.window.lock() else {
            return;
        };
        for at in timestamps {
            let lag = u64::try_from(now_ms - at).unwrap_or(0).clamp(1, LAG_MAX_MS);
            window.saturating_record(lag);
        }
    }

    /// Closes the current window: its summary becomes [`SinkMetrics::last_window`] and a new
    /// window starts.
    pub fn roll_window(&self) -> LagSummary {
        let summary = match self.window.lock() {
            Ok(mut window) => {
                let summary = LagSummary::from(&*window);
                window.reset();
                summary
            }
            Err(_) => LagSummary::default(),
        };
        if let Ok(mut last) = self.last.lock() {
            *last = summary;
        }
        summary
    }

    /// The summary of the last closed window.
    pub fn last_window(&self) -> LagSummary {
        self.last.lock().map(|l| *l).unwrap_or_default()
    }

    /// The Prometheus text exposition of every counter and the last window's lag.
    pub fn prometheus(&self) -> String {
        let mut out = String::new();
        let counters = [
            ("records", "records of committed batches", &self.records),
            (
                "messages_inserted",
                "message rows inserted",
                &self.messages_inserted,
            ),
            (
                "duplicates_skipped",
                "replayed messages already stored",
                &self.duplicates_skipped,
            ),
            ("delivered", "DELIVERED receipts inserted", &self.delivered),
            ("read_marks", "READ watermarks moved", &self.read_marks),
            ("batches", "batches committed", &self.batches),
            (
                "dead_letters",
                "records sent to the dead-letter topic",
                &self.dead_letters,
            ),
            (
                "transient_retries",
                "retries after a transient error",
                &self.transient_retries,
            ),
            (
                "commit_failures",
                "batches whose offset commit was dropped",
                &self.commit_failures,
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(
                out,
                "# HELP stompbox_sink_{name}_total {help}\n# TYPE stompbox_sink_{name}_total counter\nstompbox_sink_{name}_total {}",
                value.load(Ordering::Relaxed)
            );
        }
        let lag = self.last_window();
        let _ = writeln!(
            out,
            "# HELP stompbox_sink_lag_ms persistence lag (record timestamp to offsets committed), last window\n# TYPE stompbox_sink_lag_ms gauge\nstompbox_sink_lag_ms{{quantile=\"0.5\"}} {}\nstompbox_sink_lag_ms{{quantile=\"0.99\"}} {}\nstompbox_sink_lag_ms{{quantile=\"1\"}} {}",
            lag.p50_ms, lag.p99_ms, lag.max_ms
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_summarizes_its_lags_then_starts_empty() {
        let metrics = SinkMetrics::default();
        metrics.record_lags(1_000, (1..=100).map(|i| 1_000 - i));
        let summary = metrics.roll_window();
        assert_eq!(summary.samples, 100);
        assert_eq!(summary.p50_ms, 50);
        assert_eq!(summary.p99_ms, 99);
        assert_eq!(metrics.last_window(), summary);
        assert_eq!(metrics.roll_window().samples, 0);
    }

    #[test]
    fn prometheus_text_has_counters_and_lag() {
        let metrics = SinkMetrics::default();
        metrics.messages_inserted.fetch_add(7, Ordering::Relaxed);
        metrics.record_lags(100, [90].into_iter());
        metrics.roll_window();
        let text = metrics.prometheus();
        assert!(
            text.contains("stompbox_sink_messages_inserted_total 7\n"),
            "{text}"
        );
        assert!(
            text.contains("stompbox_sink_lag_ms{quantile=\"0.5\"} 10\n"),
            "{text}"
        );
    }
}
