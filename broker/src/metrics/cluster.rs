//! The cluster's link to Redis: publish → receive propagation (the envelope carries its
//! publish time), publishes and their failures, reconnects, the subscribed channels, the
//! presence scripts' latency, and `/queue` stream traffic.

use prometheus::{Histogram, HistogramVec, IntCounter, IntGaugeVec};

use super::bucket::LATENCY_SECONDS;
use super::register::Register;

pub struct ClusterMetrics {
    pub propagation: Histogram,
    pub published: IntCounter,
    pub publish_failures: IntCounter,
    pub received: IntCounter,
    pub malformed: IntCounter,
    pub dropped: IntCounter,
    pub reconnects: IntCounter,
    pub primary_reconnects: IntCounter,
    connected: IntGaugeVec,
    channels: IntGaugeVec,
    presence: HistogramVec,
}

impl ClusterMetrics {
    pub(super) fn new(r: &Register<'_>) -> Self {
        Self {
            propagation: r.histogram(
                "stompbox_cluster_propagation_seconds",
                "From an envelope built on one node to its arrival on another (wall clocks: \
                 skew between hosts adds to it)",
                LATENCY_SECONDS,
            ),
            published: r.counter(
                "stompbox_cluster_published_total",
                "Envelopes published to Redis",
            ),
            publish_failures: r.counter(
                "stompbox_cluster_publish_failures_total",
                "Envelopes whose publish to Redis failed",
            ),
            received: r.counter(
                "stompbox_cluster_received_total",
                "Envelopes from other nodes delivered here",
            ),
            malformed: r.counter(
                "stompbox_cluster_malformed_total",
                "Payloads from Redis that were not a valid envelope",
            ),
            dropped: r.counter(
                "stompbox_cluster_dropped_total",
                "Envelopes dropped: before publishing (publisher queue full or Redis down), or on arrival \
                 (a Redis Cluster subscriber's inbound queue full)",
            ),
            reconnects: r.counter(
                "stompbox_cluster_reconnects_total",
                "Times the Redis subscriber connection was re-established",
            ),
            primary_reconnects: r.counter(
                "stompbox_cluster_primary_reconnects_total",
                "Times the command connection re-resolved the Redis primary through the sentinels \
                 and reconnected (redis+sentinel:// only)",
            ),
            // Labelled so that a single node, which never sets them, has no series at all
            // (rather than a `0` an alert would read as "Redis down").
            connected: r.gauges(
                "stompbox_cluster_redis_connected",
                "1 while the Redis subscriber connection is up (absent on a single node)",
                &["link"],
            ),
            channels: r.gauges(
                "stompbox_cluster_subscribed_channels",
                "Redis channels and patterns this node subscribes to",
                &["link"],
            ),
            presence: r.histograms(
                "stompbox_cluster_presence_script_seconds",
                "Round trip of a presence Lua script to Redis, by script",
                LATENCY_SECONDS,
                &["script"],
            ),
        }
    }

    pub fn set_connected(&self, up: bool) {
        self.connected
            .with_label_values(&["subscriber"])
            .set(i64::from(up));
    }

    pub fn set_channels(&self, n: usize) {
        self.channels
            .with_label_values(&["subscriber"])
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// The histogram of one presence script (resolved once, where the scripts are built).
    pub fn presence_script(&self, script: &'static str) -> Histogram {
        self.presence.with_label_values(&[script])
    }
}
