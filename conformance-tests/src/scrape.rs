//! Reading the broker's `GET /metrics` (the Prometheus text format): one series' value, by its
//! name and labels exactly as the exposition writes them.

use std::time::Duration;

use crate::Broker;

/// The value of `series` (e.g. `stompbox_drops_total{reason="slow_consumer"}`) in `text`, if
/// the exposition has it.
pub fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse().ok()).flatten()
        })
}

impl Broker {
    /// The current value of `series` on this broker; 0 when it has no such series yet.
    pub async fn metric(&self, series: &str) -> f64 {
        value(&self.http_get("/metrics").await, series).unwrap_or(0.0)
    }

    /// Waits (bounded by [`crate::WAIT`]) until `series` reaches `at_least`: counters move
    /// when the broker's side of an event is done, which may trail what the client saw.
    pub async fn metric_reaches(&self, series: &str, at_least: f64) -> f64 {
        let deadline = tokio::time::Instant::now() + crate::WAIT;
        loop {
            let now = self.metric(series).await;
            if now >= at_least {
                return now;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{series} is {now}, expected at least {at_least}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
