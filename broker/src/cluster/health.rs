//! What the node knows about its link to Redis, for logs and the `/health` endpoint: whether
//! the subscriber connection is up, how often it had to reconnect, and what was lost. Each
//! event also counts in the process's metrics (`metrics::cluster`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::metrics::cluster::ClusterMetrics;

fn metrics() -> &'static ClusterMetrics {
    &crate::metrics::get().cluster
}

#[derive(Debug, Default)]
pub struct Health {
    connected: AtomicBool,
    reconnects: AtomicU64,
    published: AtomicU64,
    publish_failures: AtomicU64,
    dropped: AtomicU64,
    received: AtomicU64,
    malformed: AtomicU64,
}

/// A point-in-time copy, serialized as the `/health` JSON's `cluster` object.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HealthSnapshot {
    pub node_id: u16,
    pub redis_connected: bool,
    pub redis_reconnects: u64,
    pub published: u64,
    pub publish_failures: u64,
    pub dropped: u64,
    pub received: u64,
    pub malformed: u64,
}

impl Health {
    /// Records a (re)connection; `true` when it is a reconnect rather than the first connect.
    pub fn connected(&self, first: bool) {
        self.connected.store(true, Ordering::Relaxed);
        metrics().set_connected(true);
        if !first {
            self.reconnects.fetch_add(1, Ordering::Relaxed);
            metrics().reconnects.inc();
        }
    }

    pub fn disconnected(&self) {
        self.connected.store(false, Ordering::Relaxed);
        metrics().set_connected(false);
    }

    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    pub fn published(&self, n: u64) {
        self.published.fetch_add(n, Ordering::Relaxed);
        metrics().published.inc_by(n);
    }

    pub fn publish_failed(&self, n: u64) {
        self.publish_failures.fetch_add(n, Ordering::Relaxed);
        metrics().publish_failures.inc_by(n);
    }

    pub fn dropped(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
        metrics().dropped.inc();
    }

    pub fn received(&self) {
        self.received.fetch_add(1, Ordering::Relaxed);
        metrics().received.inc();
    }

    pub fn malformed(&self) {
        self.malformed.fetch_add(1, Ordering::Relaxed);
        metrics().malformed.inc();
    }

    pub fn snapshot(&self, node_id: u16) -> HealthSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        HealthSnapshot {
            node_id,
            redis_connected: self.is_connected(),
            redis_reconnects: get(&self.reconnects),
            published: get(&self.published),
            publish_failures: get(&self.publish_failures),
            dropped: get(&self.dropped),
            received: get(&self.received),
            malformed: get(&self.malformed),
        }
    }
}
