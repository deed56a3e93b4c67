//! The testbed's own HTTP API, for tests: what was received and attempted, counters, and
//! scripting failures (`/_testbed/...`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value;

use crate::Shared;
use crate::record::{Attempt, Received, Script, Stats};

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_testbed/received", get(received))
        .route("/_testbed/attempts", get(attempts))
        .route("/_testbed/stats", get(stats))
        .route("/_testbed/script", post(script))
        .route("/_testbed/reset", post(reset))
        .route("/_testbed/webpush/subscribe", post(subscribe))
}

/// `?platform=fcm|apns|webpush` narrows it.
async fn received(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Json<Vec<Received>> {
    Json(
        shared
            .recorder
            .received(query.get("platform").map(String::as_str)),
    )
}

async fn attempts(State(shared): State<Arc<Shared>>) -> Json<Vec<Attempt>> {
    Json(shared.recorder.attempts())
}

async fn stats(State(shared): State<Arc<Shared>>) -> Json<Stats> {
    Json(shared.recorder.stats())
}

async fn script(State(shared): State<Arc<Shared>>, Json(script): Json<Script>) -> Json<Value> {
    shared.apply(script);
    Json(serde_json::json!({"ok": true}))
}

async fn reset(State(shared): State<Arc<Shared>>) -> Json<Value> {
    shared.recorder.reset();
    Json(serde_json::json!({"ok": true}))
}

async fn subscribe(State(shared): State<Arc<Shared>>) -> Json<Value> {
    Json(shared.webpush.subscribe())
}
