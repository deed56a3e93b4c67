//! The operators' HTTP API on the broker's HTTP port (`/admin/...`), enabled by
//! `--admin-token` and refused (401) without `Authorization: Bearer <token>`; absent (404)
//! when no token is configured. It speaks for this node only: in a cluster, ask each node.
//!
//! | method and path | answer |
//! |---|---|
//! | `GET /admin/node` | node id, readiness, the Redis link, session counts by transport |
//! | `GET /admin/users/{user}/sessions` | the user's sessions here: transport, address, since, subscriptions |
//! | `POST /admin/users/{user}/disconnect` `{reason?}` | closes them with ERROR `disconnected by operator` |
//! | `POST /admin/sessions/{session}/disconnect` `{reason?}` | closes one (its CONNECTED `session`) |
//! | `POST /admin/drain` | drains this node as SIGTERM does, then it exits |

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::bearer::BearerToken;
use crate::broker::Broker;
use crate::handle::SessionHandle;

/// The reason an ERROR carries when the operator gave none.
const DEFAULT_REASON: &str = "disconnected by an operator; reconnect later";
/// Longest reason kept: it goes into an ERROR frame's body.
const MAX_REASON: usize = 1024;

/// The admin routes, or none when no admin token is configured.
pub fn routes(broker: Arc<Broker>) -> axum::Router {
    let Some(token) = broker.config.auth.admin_token.as_deref() else {
        return axum::Router::new();
    };
    let token = BearerToken::from(token);
    axum::Router::new()
        .route("/admin/node", get(node))
        .route("/admin/users/{user}/sessions", get(user_sessions))
        .route("/admin/users/{user}/disconnect", post(disconnect_user))
        .route(
            "/admin/sessions/{session}/disconnect",
            post(disconnect_session),
        )
        .route("/admin/drain", post(drain))
        .route_layer(middleware::from_fn_with_state(token, BearerToken::require))
        .with_state(broker)
}

async fn node(State(broker): State<Arc<Broker>>) -> Response {
    let sessions = broker.router.sessions();
    let mut by_transport: BTreeMap<&str, usize> = BTreeMap::new();
    let mut users = std::collections::HashSet::new();
    for session in &sessions {
        *by_transport.entry(session.record.transport()).or_default() += 1;
        users.insert(session.principal.name());
    }
    let ready = broker.ready_report();
    Json(json!({
        "node_id": broker.config.node_id,
        "version": env!("CARGO_PKG_VERSION"),
        "status": if broker.stopping.is_cancelled() { "stopping" } else { "ok" },
        "ready": ready.ready,
        "draining": ready.draining,
        "not_ready": ready.not_ready,
        "cluster": broker.cluster_health(),
        "sessions": sessions.len(),
        "users": users.len(),
        "sessions_by_transport": by_transport,
    }))
    .into_response()
}

fn describe(session: &SessionHandle) -> Value {
    let record = &session.record;
    let subscriptions: Vec<Value> = record
        .subscriptions()
        .into_iter()
        .map(|(id, destination)| json!({"id": &*id, "destination": destination}))
        .collect();
    json!({
        "session": session.name.to_string(),
        "user": session.principal.name(),
        "transport": record.transport(),
        "address": record.address.to_string(),
        "since_ms": record.since_ms,
        "subscriptions": subscriptions,
    })
}

fn sessions_of(broker: &Broker, user: &str) -> Vec<Arc<SessionHandle>> {
    let mut sessions: Vec<_> = broker
        .router
        .sessions()
        .into_iter()
        .filter(|s| s.principal.name() == user)
        .collect();
    sessions.sort_by_key(|s| s.id);
    sessions
}

async fn user_sessions(State(broker): State<Arc<Broker>>, Path(user): Path<String>) -> Response {
    let sessions: Vec<Value> = sessions_of(&broker, &user)
        .iter()
        .map(|s| describe(s))
        .collect();
    Json(json!({"user": user, "sessions": sessions})).into_response()
}

/// The `reason` of a disconnect's JSON body `{reason?}` (an empty body is no reason);
/// 400 when the body is not that.
struct Reason(String);

impl<S: Send + Sync> FromRequest<S> for Reason {
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Response> {
        let body = Bytes::from_request(request, state)
            .await
            .map_err(IntoResponse::into_response)?;
        Self::try_from(&body[..]).map_err(|message| {
            (
                StatusCode::BAD_REQUEST,
                Json(json!({"code": "BAD_REQUEST", "message": message})),
            )
                .into_response()
        })
    }
}

impl TryFrom<&[u8]> for Reason {
    type Error = String;

    fn try_from(body: &[u8]) -> Result<Self, String> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(DEFAULT_REASON.into()));
        }
        let value: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
        match value.get("reason") {
            None | Some(Value::Null) => Ok(Self(DEFAULT_REASON.into())),
            Some(Value::String(r)) if r.len() <= MAX_REASON => Ok(Self(r.clone())),
            Some(Value::String(_)) => Err(format!("reason: at most {MAX_REASON} bytes")),
            Some(_) => Err("reason must be a string".into()),
        }
    }
}

async fn disconnect_user(
    State(broker): State<Arc<Broker>>,
    Path(user): Path<String>,
    Reason(reason): Reason,
) -> Response {
    let sessions = sessions_of(&broker, &user);
    for session in &sessions {
        session.disconnect(reason.clone());
    }
    tracing::info!(user = %user, sessions = sessions.len(), %reason, "admin: user disconnected");
    Json(json!({"user": user, "disconnected": sessions.len()})).into_response()
}

async fn disconnect_session(
    State(broker): State<Arc<Broker>>,
    Path(name): Path<String>,
    Reason(reason): Reason,
) -> Response {
    let found = broker
        .router
        .sessions()
        .into_iter()
        .find(|s| s.name == *name);
    let Some(session) = found else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"code": "NOT_FOUND", "message": "no such session on this node"})),
        )
            .into_response();
    };
    session.disconnect(reason.clone());
    tracing::info!(session = %name, user = %session.principal.name(), %reason,
        "admin: session disconnected");
    Json(json!({"session": name, "disconnected": 1})).into_response()
}

async fn drain(State(broker): State<Arc<Broker>>) -> Response {
    tracing::info!("admin: drain requested");
    broker.readiness.drain();
    (
        StatusCode::ACCEPTED,
        Json(json!({"draining": true, "drain_delay_ms": broker.config.drain_delay.as_millis() as u64})),
    )
        .into_response()
}
