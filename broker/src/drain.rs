//! How a node leaves service (SIGTERM, SIGINT or `POST /admin/drain`), in an order that loses
//! nothing accepted and spares the other nodes a reconnect storm:
//!
//! 1. not ready: `/health/ready` answers 503 `draining`, while the node still serves and
//!    accepts for `--drain-delay`, long enough for load balancers polling it to stop sending
//!    it clients;
//! 2. stop accepting: the listeners close, handshakes in progress are refused;
//! 3. close the sessions, evenly spaced over `--drain-period`, each with ERROR
//!    `server shutting down` ("reconnect to another node"), after what was routed to it;
//! 4. wait for them (bounded by `--shutdown-timeout`); the caller then stops the background
//!    work and closes the store, which writes out what it still holds.

use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::broker::Broker;

/// Runs steps 1 to 4. `listeners` are the accept loops' tasks, which end once
/// `broker.stopping` is cancelled; `sessions` tracks every session task.
pub async fn drain(broker: &Arc<Broker>, listeners: Vec<JoinHandle<()>>, sessions: &TaskTracker) {
    let config = &broker.config;
    broker.readiness.drain();
    info!(drain_delay = ?config.drain_delay, "draining: not ready, still serving");
    tokio::time::sleep(config.drain_delay).await;

    broker.stopping.cancel();
    for listener in listeners {
        let _ = listener.await;
    }

    let open = broker.router.sessions();
    info!(sessions = open.len(), drain_period = ?config.drain_period,
        "draining: listeners closed, closing sessions");
    // Each session has its moment in the period; the timer ticks by the millisecond, so with
    // more sessions than milliseconds several are due at each tick and closed together.
    let start = Instant::now();
    let count = open.len().max(1) as f64;
    for (i, session) in open.into_iter().enumerate() {
        let due = start + config.drain_period.mul_f64(i as f64 / count);
        if due > Instant::now() {
            tokio::time::sleep_until(due).await;
        }
        session.close();
    }
    // Any session that finished its handshake while the others were being closed.
    for session in broker.router.sessions() {
        session.close();
    }
    sessions.close();
    let timeout = config.shutdown_timeout;
    if tokio::time::timeout(timeout, sessions.wait())
        .await
        .is_err()
    {
        warn!(
            remaining = sessions.len(),
            "shutdown timeout: abandoning sessions"
        );
    }
}
