//! The health endpoints on the HTTP listener, for load balancers, orchestrators and the test
//! harnesses:
//!
//! - `GET /health/live`: 200 while the process answers at all (restart it when this fails);
//! - `GET /health/ready`: 200 when the node should be given clients, 503 when not, with a
//!   body naming each part that is not ready (`readiness.rs`);
//! - `GET /health`: the original summary (status, node id, the Redis link), plus readiness.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::broker::Broker;

pub fn routes(broker: Arc<Broker>) -> axum::Router {
    axum::Router::new()
        .route("/health", get(summary))
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .with_state(broker)
}

/// `{"status":"ok"|"stopping","node_id":N,"ready":bool,"not_ready":[...],"cluster":null |
/// {redis_connected, redis_reconnects, ...}}`: always 200 (it is the liveness of old).
async fn summary(State(broker): State<Arc<Broker>>) -> Response {
    let ready = broker.ready_report();
    axum::Json(json!({
        "status": if broker.stopping.is_cancelled() { "stopping" } else { "ok" },
        "node_id": broker.config.node_id,
        "ready": ready.ready,
        "not_ready": ready.not_ready,
        "cluster": broker.cluster_health(),
    }))
    .into_response()
}

async fn live(State(broker): State<Arc<Broker>>) -> Response {
    axum::Json(json!({"status": "live", "node_id": broker.config.node_id})).into_response()
}

/// 200 `{"ready":true,"draining":false,"not_ready":[]}`, or 503 with `not_ready` listing
/// `{part, reason}` for each of `draining`, `redis`, `sqlite`, `postgres`, `kafka`, `store`
/// that is not ready.
async fn ready(State(broker): State<Arc<Broker>>) -> Response {
    let report = broker.ready_report();
    let status = if report.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(report)).into_response()
}
