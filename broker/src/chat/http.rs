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
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
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
        .with_state(api)
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
    headers: &HeaderMap,
    action: &str,
    actor_field: &str,
    mut body: Value,
    created: bool,
) -> Response {
    if !authorized(api, headers) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"code": "UNAUTHORIZED", "message": "missing or wrong service token"})),
        )
            .into_response();
    }
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

async fn create(State(api): State<Api>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    act(&api, &headers, "conversation.create", "creator", body, true).await
}

async fn members(
    State(api): State<Api>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(mut body): Json<Value>,
) -> Response {
    if let Some(o) = body.as_object_mut() {
        o.insert("conversationId".into(), Value::String(id));
    }
    act(
        &api,
        &headers,
        "conversation.members",
        "asUser",
        body,
        false,
    )
    .await
}

async fn send(State(api): State<Api>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    act(&api, &headers, "chat.send", "senderId", body, true).await
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct HistoryQuery {
    as_user: String,
    before: Option<String>,
    limit: Option<usize>,
}

async fn history(
    State(api): State<Api>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> Response {
    let body = json!({
        "asUser": q.as_user,
        "conversationId": id,
        "beforeMessageId": q.before,
        "limit": q.limit,
    });
    act(&api, &headers, "chat.history", "asUser", body, false).await
}
