//! The backend services' HTTP API on the broker's HTTP port (`/api/...`), with the same
//! semantics as the STOMP contract: every call runs the same chat operation, through the same
//! sequencer, as a named user. Authenticated by a bearer service token; absent when no token
//! is configured.
//!
//! | method and path | body / query | acts as |
//! |---|---|---|
//! | `POST /api/conversations` | `{type, name?, members, creator}` | `creator` |
//! | `POST /api/conversations/{id}/members` | `{add?, remove?, asUser}` | `asUser` (creator/admin) |
//! | `POST /api/messages` | `{senderId, conversationId \| recipientId, content, clientMessageId?, contentType?}` | `senderId` |
//! | `GET /api/conversations/{id}/messages` | `?asUser=&before=&limit=` | `asUser` (member) |

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Chat;
use super::error::AppError;

#[derive(Clone)]
struct Api {
    chat: Arc<Chat>,
    token: Arc<str>,
}

/// The API's routes, or none when no service token is configured.
pub fn routes(chat: Arc<Chat>, token: Option<&str>) -> axum::Router {
    let Some(token) = token else {
        return axum::Router::new();
    };
    let api = Api {
        chat,
        token: Arc::from(token),
    };
    axum::Router::new()
        .route("/api/conversations", post(create))
        .route("/api/conversations/{id}/members", post(members))
        .route("/api/conversations/{id}/messages", get(history))
        .route("/api/messages", post(send))
        // The token is checked before anything looks at the request: an unauthenticated
        // caller learns nothing about what a valid body would be.
        .route_layer(middleware::from_fn_with_state(api.clone(), require_token))
        .with_state(api)
}

async fn require_token(State(api): State<Api>, request: Request, next: Next) -> Response {
    if authorized(&api, request.headers()) {
        next.run(request).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            Json(json!({"code": "UNAUTHORIZED", "message": "missing or wrong service token"})),
        )
            .into_response()
    }
}

/// The body as a JSON object, whatever its declared content type.
fn json_body(body: &[u8]) -> Result<Value, AppError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(v) if v.is_object() => Ok(v),
        Ok(_) => Err(AppError::BadRequest(
            "the body must be a JSON object".into(),
        )),
        Err(e) => Err(AppError::BadRequest(e.to_string())),
    }
}

fn authorized(api: &Api, headers: &HeaderMap) -> bool {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    // Compare in constant time: the token is a secret.
    presented.is_some_and(|p| {
        p.len() == api.token.len()
            && p.bytes()
                .zip(api.token.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    })
}

fn failure(error: &AppError) -> Response {
    let status =
        StatusCode::from_u16(error.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        Json(json!({"code": error.code(), "message": error.to_string()})),
    )
        .into_response()
}

/// Takes the acting user out of `body` and runs `action` as them.
async fn act(
    api: &Api,
    action: &str,
    actor_field: &str,
    mut body: Value,
    created: bool,
) -> Response {
    let actor = body
        .as_object_mut()
        .and_then(|o| o.remove(actor_field))
        .and_then(|v| v.as_str().map(str::to_string));
    let Some(actor) = actor.filter(|a| crate::auth::Principal::try_from(a.as_str()).is_ok()) else {
        return failure(&AppError::BadRequest(format!(
            "{actor_field} must name a user"
        )));
    };
    let bytes = body.to_string();
    match api.chat.call(&actor, action, bytes.as_bytes()).await {
        Ok(outcome) => {
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            (status, Json(outcome.reply.unwrap_or(Value::Null))).into_response()
        }
        Err(e) => failure(&e),
    }
}

async fn create(State(api): State<Api>, body: Bytes) -> Response {
    match json_body(&body) {
        Ok(body) => act(&api, "conversation.create", "creator", body, true).await,
        Err(bad) => failure(&bad),
    }
}

async fn members(State(api): State<Api>, Path(id): Path<String>, body: Bytes) -> Response {
    let mut body = match json_body(&body) {
        Ok(body) => body,
        Err(bad) => return failure(&bad),
    };
    if let Some(o) = body.as_object_mut() {
        o.insert("conversationId".into(), Value::String(id));
    }
    act(&api, "conversation.members", "asUser", body, false).await
}

async fn send(State(api): State<Api>, body: Bytes) -> Response {
    match json_body(&body) {
        Ok(body) => act(&api, "chat.send", "senderId", body, true).await,
        Err(bad) => failure(&bad),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct HistoryQuery {
    as_user: Option<String>,
    before: Option<String>,
    limit: Option<usize>,
}

async fn history(
    State(api): State<Api>,
    Path(id): Path<String>,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return failure(&AppError::BadRequest("bad query string".into()));
    };
    let body = json!({
        "asUser": q.as_user,
        "conversationId": id,
        "beforeMessageId": q.before,
        "limit": q.limit,
    });
    act(&api, "chat.history", "asUser", body, false).await
}
