//! The publish API for backend services (`POST /api/publish`): a message to a `/topic/...`,
//! `/queue/...` or `/user/{name}/queue/...` destination, routed exactly as a STOMP SEND is
//! (this node's subscribers, and the other nodes' in a cluster) and bounded by the same
//! limits. Authenticated like the chat's service API, by `--service-token`; absent without it.
//!
//! Body: `{"destination": "...", "headers": {"name": "value", ...}?, "body": "..."}`.
//! Answer: 202 `{"messageId": "...", "destination": "..."}` once routed (the `message-id` of
//! the MESSAGE frames it becomes). Errors: 400 `BAD_REQUEST` / `UNKNOWN_DESTINATION` /
//! `RESERVED_HEADER`, 413 `TOO_LARGE`, 503 `QUEUE_FULL`, each `{code, message}`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use serde_json::json;
use stomp_codec::Headers;

use crate::bearer::BearerToken;
use crate::broker::Broker;
use crate::destination::Destination;
use crate::error::StompError;
use crate::message::{Message, SENDER_HEADER, TRANSPORT_HEADERS};

/// Room for JSON's escaping of a frame at the largest size a SEND may have (`\u00XX` is six
/// bytes for one): the request is read whole, then held to SEND's limits once decoded.
const JSON_OVERHEAD: usize = 6;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishRequest {
    destination: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    body: String,
}

/// Why a publish was refused: its status, code and message.
struct Refusal(StatusCode, &'static str, String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let Refusal(status, code, message) = self;
        (status, Json(json!({"code": code, "message": message}))).into_response()
    }
}

impl From<StompError> for Refusal {
    fn from(e: StompError) -> Self {
        match e {
            StompError::QueueFull(..) => {
                Refusal(StatusCode::SERVICE_UNAVAILABLE, "QUEUE_FULL", e.to_string())
            }
            StompError::UnknownDestination(_) | StompError::InvalidHeader("destination", _) => {
                Refusal(
                    StatusCode::BAD_REQUEST,
                    "UNKNOWN_DESTINATION",
                    e.to_string(),
                )
            }
            other => Refusal(StatusCode::BAD_REQUEST, "BAD_REQUEST", other.to_string()),
        }
    }
}

/// The route, or none when no service token is configured.
pub fn routes(broker: Arc<Broker>) -> axum::Router {
    let Some(token) = broker.config.chat.service_token.as_deref() else {
        return axum::Router::new();
    };
    let token = BearerToken::from(token);
    let limit = broker
        .config
        .limits
        .max_frame_size
        .saturating_mul(JSON_OVERHEAD);
    axum::Router::new()
        .route("/api/publish", post(publish))
        .layer(DefaultBodyLimit::max(limit))
        .route_layer(middleware::from_fn_with_state(token, BearerToken::require))
        .with_state(broker)
}

async fn publish(State(broker): State<Arc<Broker>>, body: Bytes) -> Response {
    match route(&broker, &body) {
        Ok((id, destination)) => (
            StatusCode::ACCEPTED,
            Json(json!({"messageId": id.to_string(), "destination": destination})),
        )
            .into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

fn route(broker: &Broker, body: &[u8]) -> Result<(u64, String), Refusal> {
    let request: PublishRequest = serde_json::from_slice(body)
        .map_err(|e| Refusal(StatusCode::BAD_REQUEST, "BAD_REQUEST", e.to_string()))?;
    let destination = Destination::parse(&request.destination)?;
    match &destination {
        Destination::Topic(_) | Destination::Queue(_) => {}
        Destination::User { user: Some(_), .. } => {}
        _ => {
            return Err(Refusal(
                StatusCode::BAD_REQUEST,
                "UNKNOWN_DESTINATION",
                format!(
                    "{:?}: the publish API takes /topic/..., /queue/... and \
                     /user/{{name}}/queue/... destinations",
                    request.destination
                ),
            ));
        }
    }
    let headers = headers(broker, &request)?;
    let id = broker.ids.next_id();
    let message = Arc::new(Message::new(
        id,
        Arc::from(request.destination.as_str()),
        &headers,
        Bytes::from(request.body),
    ));
    // No sender session: `own` only names the user of `/user/queue/...`, refused above.
    broker.router.route(destination, message, "")?;
    Ok((id, request.destination))
}

/// The request's headers, held to what a SEND may carry: none of the names the broker sets
/// (`message-id`, `user-id`, ...), and SEND's limits on count, line, body and frame.
fn headers(broker: &Broker, request: &PublishRequest) -> Result<Headers, Refusal> {
    let limits = &broker.config.limits;
    let too_large = |what: String| Refusal(StatusCode::PAYLOAD_TOO_LARGE, "TOO_LARGE", what);
    if request.body.len() > limits.max_body {
        return Err(too_large(format!("body over {} bytes", limits.max_body)));
    }
    if request.headers.len() + 1 > limits.max_headers {
        return Err(too_large(format!(
            "more than {} headers",
            limits.max_headers
        )));
    }
    let mut frame = "SEND\n".len() + "destination:".len() + request.destination.len() + 2;
    let mut headers = Headers::with_capacity(request.headers.len());
    for (name, value) in &request.headers {
        if name.is_empty() {
            return Err(Refusal(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                "an empty header name".into(),
            ));
        }
        if TRANSPORT_HEADERS.contains(&name.as_str()) || name == SENDER_HEADER {
            return Err(Refusal(
                StatusCode::BAD_REQUEST,
                "RESERVED_HEADER",
                format!("header {name:?} is the broker's to set"),
            ));
        }
        let line = name.len() + 1 + value.len();
        if line > limits.max_header_line {
            return Err(too_large(format!(
                "header {name:?} over {} bytes",
                limits.max_header_line
            )));
        }
        frame += line + 1;
        headers.push(name.as_str(), value.as_str());
    }
    if frame + request.body.len() > limits.max_frame_size {
        return Err(too_large(format!(
            "frame over {} bytes",
            limits.max_frame_size
        )));
    }
    Ok(headers)
}
