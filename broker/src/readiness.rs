//! Whether this node should be given clients (`GET /health/ready`): its store takes writes
//! (each store's own probe: SQLite's writer, PostgreSQL a primary, Kafka's metadata), it is
//! connected to Redis in cluster mode, and it is not draining. The store is probed in the
//! background, once a second and bounded, so a load balancer polling readiness costs the
//! store nothing; Redis and draining are read as they are.
//!
//! Draining is also begun here ([`Readiness::drain`]): by SIGTERM, or by an operator
//! (`POST /admin/drain`); `Server::run` waits on it and runs the drain sequence (`drain.rs`).

use std::sync::Arc;
use std::time::Duration;

use chat_store::{ChatStore, Unready};
use parking_lot::Mutex;
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How often the store is probed: a load balancer polling every few seconds sees a state at
/// most this old.
const PROBE_EVERY: Duration = Duration::from_secs(1);
/// Longest one probe may take before the store counts as not ready: a store slower than this
/// to answer a trivial request cannot serve chat writes in time either.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug)]
pub struct Readiness {
    /// Cancelled when draining begins.
    draining: CancellationToken,
    /// What the last store probe found wrong (empty: ready).
    store: Mutex<Vec<Unready>>,
}

/// The `/health/ready` answer: ready, or each part that is not and why.
#[derive(Debug, Clone, Serialize)]
pub struct ReadyReport {
    pub ready: bool,
    pub draining: bool,
    /// `{part, reason}`: `draining`, `redis`, `sqlite`, `postgres`, `kafka`, `store`.
    pub not_ready: Vec<Unready>,
}

impl Default for Readiness {
    fn default() -> Self {
        Self {
            draining: CancellationToken::new(),
            store: Mutex::new(vec![Unready {
                part: "store",
                reason: "not probed yet".into(),
            }]),
        }
    }
}

impl Readiness {
    /// Begins draining (idempotent): readiness turns false at once.
    pub fn drain(&self) {
        self.draining.cancel();
    }

    pub fn is_draining(&self) -> bool {
        self.draining.is_cancelled()
    }

    /// Resolves when draining begins.
    pub async fn draining(&self) {
        self.draining.cancelled().await;
    }

    /// Probes `store` once, bounded by [`PROBE_TIMEOUT`], and keeps what it found.
    pub async fn probe(&self, store: &dyn ChatStore) {
        let found = match tokio::time::timeout(PROBE_TIMEOUT, store.probe()).await {
            Ok(found) => found,
            Err(_) => vec![Unready {
                part: "store",
                reason: format!("the store's probe did not answer within {PROBE_TIMEOUT:?}"),
            }],
        };
        let was_ready = self.store.lock().is_empty();
        if was_ready != found.is_empty() {
            match found.first() {
                Some(u) => tracing::warn!(part = u.part, reason = %u.reason, "store not ready"),
                None => tracing::info!("store ready again"),
            }
        }
        *self.store.lock() = found;
    }

    /// Probes `store` every [`PROBE_EVERY`] until `done`.
    pub fn spawn_probe(
        self: &Arc<Self>,
        store: Arc<dyn ChatStore>,
        tasks: &TaskTracker,
        done: CancellationToken,
    ) {
        let readiness = Arc::clone(self);
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(PROBE_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = done.cancelled() => return,
                    _ = tick.tick() => {}
                }
                tokio::select! {
                    () = done.cancelled() => return,
                    () = readiness.probe(&*store) => {}
                }
            }
        });
    }

    /// The report, given whether Redis is connected (`None`: not in cluster mode).
    pub fn report(&self, redis_connected: Option<bool>) -> ReadyReport {
        let draining = self.is_draining();
        let mut not_ready = Vec::new();
        if draining {
            not_ready.push(Unready {
                part: "draining",
                reason: "the node is draining: it closes its sessions and stops".into(),
            });
        }
        if redis_connected == Some(false) {
            not_ready.push(Unready {
                part: "redis",
                reason: "not connected to the cluster's Redis: cross-node delivery is paused"
                    .into(),
            });
        }
        not_ready.extend(self.store.lock().iter().cloned());
        ReadyReport {
            ready: not_ready.is_empty(),
            draining,
            not_ready,
        }
    }
}
