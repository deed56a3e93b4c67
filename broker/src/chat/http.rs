//! The backend services' HTTP API on the broker's HTTP port (`/api/...`), with the same
//! semantics as the STOMP contract: every call is typed into the same [`ChatRequest`] and runs
//! through the same sequencer, as a named user. Authenticated by a bearer service token;
//! absent when no token is configured.
//!
//! | method and path | body / query | acts as |
//! |---|---|---|
//! | `POST /api/conversations` | `{type, name?, members, creator}` | `creator` |
//! | `POST /api/conversations/{id}/members` | `{add?, remove?, asUser}` | `asUser` (creator/admin) |
//! | `POST /api/messages` | `{senderId, conversationId \| recipientId, content, clientMessageId?, contentType?}` | `senderId` |
//! | `GET /api/conversations/{id}/messages` | `?asUser=&before=&limit=` | `asUser` (member) |
//! | `POST /api/push/devices` | `{asUser, platform, token \| subscription}` | `asUser` |
//! | `DELETE /api/push/devices` | `{asUser, platform, token \| subscription}` | `asUser` |

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::Chat;
use super::error::AppError;
use super::model::{self, IdString};
use super::request::ChatRequest;
use crate::bearer::BearerToken;

#[derive(Clone)]
struct Api {
    chat: Chat,
}

/// The API's routes, or none when no service token is configured.
pub fn routes(chat: Chat, token: Option<&str>) -> axum::Router {
    let Some(token) = token else {
        return axum::Router::new();
    };
    let api = Api { chat };
    axum::Router::new()
        .route("/api/conversations", post(create))
        .route("/api/conversations/{id}/members", post(members))
        .route("/api/conversations/{id}/messages", get(history))
        .route("/api/messages", post(send))
        .route(
            "/api/push/devices",
            post(register_device).delete(unregister_device),
        )
        .route_layer(middleware::from_fn_with_state(
            BearerToken::from(token),
            BearerToken::require,
        ))
        .with_state(api)
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

/// The body as a JSON object, whatever its declared content type.
fn json_object(body: &[u8]) -> Result<Map<String, Value>, AppError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(AppError::BadRequest(
            "the body must be a JSON object".into(),
        )),
        Err(e) => Err(AppError::BadRequest(e.to_string())),
    }
}

/// `name` must be a user name: the user the call acts as.
fn acting_user(name: Option<&str>, field: &str) -> Result<String, AppError> {
    name.filter(|a| crate::auth::Principal::try_from(*a).is_ok())
        .map(str::to_string)
        .ok_or_else(|| AppError::BadRequest(format!("{field} must name a user")))
}

/// Takes the acting user out of `object` (`field`), and the rest as the request's body.
fn split<T: DeserializeOwned>(
    mut object: Map<String, Value>,
    field: &str,
) -> Result<(String, T), AppError> {
    let actor = object.remove(field);
    let user = acting_user(actor.as_ref().and_then(Value::as_str), field)?;
    Ok((user, serde_json::from_value(Value::Object(object))?))
}

/// Runs `request` as `user` and answers with its reply.
async fn act(
    api: &Api,
    typed: Result<(String, ChatRequest), AppError>,
    ok: StatusCode,
) -> Response {
    let (user, request) = match typed {
        Ok(typed) => typed,
        Err(bad) => return failure(&bad),
    };
    match api.chat.call(&user, request).await {
        Ok(outcome) => (ok, Json(outcome.into_reply())).into_response(),
        Err(e) => failure(&e),
    }
}

async fn create(State(api): State<Api>, body: Bytes) -> Response {
    let typed = json_object(&body)
        .and_then(|object| split(object, "creator"))
        .map(|(user, body)| (user, ChatRequest::CreateConversation(body)));
    act(&api, typed, StatusCode::CREATED).await
}

async fn members(State(api): State<Api>, Path(id): Path<String>, body: Bytes) -> Response {
    let typed = json_object(&body)
        .and_then(|mut object| {
            object.insert("conversationId".into(), Value::String(id));
            split(object, "asUser")
        })
        .map(|(user, body)| (user, ChatRequest::UpdateMembers(body)));
    act(&api, typed, StatusCode::OK).await
}

async fn send(State(api): State<Api>, body: Bytes) -> Response {
    let typed = json_object(&body)
        .and_then(|object| split(object, "senderId"))
        .map(|(user, body)| (user, ChatRequest::Send(body)));
    act(&api, typed, StatusCode::CREATED).await
}

async fn register_device(State(api): State<Api>, body: Bytes) -> Response {
    let typed = json_object(&body)
        .and_then(|object| split(object, "asUser"))
        .map(|(user, device)| (user, ChatRequest::PushRegister(device)));
    act(&api, typed, StatusCode::OK).await
}

async fn unregister_device(State(api): State<Api>, body: Bytes) -> Response {
    let typed = json_object(&body)
        .and_then(|object| split(object, "asUser"))
        .map(|(user, device)| (user, ChatRequest::PushUnregister(device)));
    act(&api, typed, StatusCode::OK).await
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
    let typed = acting_user(q.as_user.as_deref(), "asUser").and_then(|user| {
        let before_message_id = q
            .before
            .map(|before| before.parse::<IdString>())
            .transpose()
            .map_err(|e| AppError::BadRequest(e.to_string()))?;
        let request = model::History {
            conversation_id: id,
            before_message_id,
            limit: q.limit,
        };
        Ok((user, ChatRequest::History(request)))
    });
    act(&api, typed, StatusCode::OK).await
}
