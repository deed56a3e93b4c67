//! The broker's metrics, served as `GET /metrics` in the Prometheus text format (`http.rs`).
//!
//! One process-wide set ([`get`]), like the process it describes: Prometheus scrapes a process,
//! and the handles are reached from every layer (sessions, outboxes, the chat, the cluster)
//! without threading a registry through each constructor. Every handle with labels is resolved
//! once, here, into a field or an array indexed by an enum, so the hot path (a frame, a
//! delivery) is one or two atomic adds: no lookup, no allocation, no formatting.
//!
//! The crate is `prometheus` (tikv/rust-prometheus) rather than `prometheus-client` or
//! `metrics` + `metrics-exporter-prometheus`: its histograms are lock-free (atomics in two
//! shards; `prometheus-client` takes a lock per observation, the `metrics` exporter appends every
//! sample to a buffer drained at scrape time), its labelled handles can be resolved up front,
//! and its `process` collector reads RSS, open descriptors and CPU time from `/proc`.
//!
//! One file per area: `session.rs` (connections, frames, bytes, closes, auth), `delivery.rs`
//! (deliveries, drops, outbox depth, back-pressure), `chat.rs` (requests, latencies, the
//! sequencer), `store.rs` (a [`ChatStore`](chat_store::ChatStore) that times the real one),
//! `cluster.rs` (Redis). The handler is `listener.rs`'s (`GET /metrics`): it sets what is read
//! at scrape time (readiness, sessions per user) and renders. This module is a leaf: it uses
//! nothing of the broker but [`CloseReason`](crate::close::CloseReason), so every layer may use
//! it without a cycle.

mod bucket;
pub mod chat;
pub mod cluster;
pub mod delivery;
pub mod push;
mod register;
pub mod session;
pub mod store;

use std::sync::LazyLock;

use prometheus::{IntGauge, Registry};

use register::Register;

/// Every metric of this process.
pub struct Metrics {
    registry: Registry,
    pub session: session::SessionMetrics,
    pub delivery: delivery::DeliveryMetrics,
    pub chat: chat::ChatMetrics,
    pub store: store::StoreMetrics,
    pub cluster: cluster::ClusterMetrics,
    pub push: push::PushMetrics,
    /// `stompbox_ready`: 1 while the node wants traffic. Set at each scrape from what the
    /// node knows (`listener.rs`); the readiness probe (`/health/ready`) is the one to own it.
    pub ready: IntGauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// The exposition's media type (the Prometheus text format).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// This process's metrics.
pub fn get() -> &'static Metrics {
    &METRICS
}

impl Metrics {
    fn new() -> Self {
        let registry = Registry::new();
        let r = Register(&registry);
        let ready = r.gauge(
            "stompbox_ready",
            "1 while this node wants traffic, 0 otherwise",
        );
        #[cfg(target_os = "linux")]
        r.collector(prometheus::process_collector::ProcessCollector::for_self());
        Self {
            session: session::SessionMetrics::new(&r),
            delivery: delivery::DeliveryMetrics::new(&r),
            chat: chat::ChatMetrics::new(&r),
            store: store::StoreMetrics::new(&r),
            cluster: cluster::ClusterMetrics::new(&r),
            push: push::PushMetrics::new(&r),
            ready,
            registry,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        use prometheus::Encoder as _;
        let mut out = Vec::with_capacity(16 * 1024);
        // Only fails on a write error, and a Vec cannot fail.
        let _ = prometheus::TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_registers_and_renders_with_units_in_names() {
        let text = get().render();
        assert!(text.contains("# TYPE stompbox_ready gauge"), "{text}");
        for line in text.lines().filter(|l| l.starts_with("# TYPE stompbox_")) {
            let mut parts = line.split(' ').skip(2);
            let (name, kind) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            if kind == "counter" {
                assert!(name.ends_with("_total"), "counter without _total: {name}");
            }
            if kind == "histogram" {
                assert!(
                    ["_seconds", "_bytes", "_frames", "_operations", "_sessions"]
                        .iter()
                        .any(|u| name.ends_with(u)),
                    "histogram without a unit: {name}"
                );
            }
        }
    }
}
