//! APNs as the broker meets it: HTTP/2 only, `POST /3/device/<token>` with a provider token
//! whose ES256 signature, key id (`kid`) and team id (`iss`) are checked against the .p8 key
//! the testbed issued, and no older than an hour; `apns-topic` must be the app's, and the
//! answers carry Apple's `{"reason": …}`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Version};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use bytes::Bytes;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Shared;
use crate::keys;
use crate::record::{self, Scripted, now_ms};

const PLATFORM: &str = "apns";
/// Apple refuses provider tokens issued more than an hour ago.
const TOKEN_MAX_AGE_SECS: u64 = 3600;
/// Headers worth recording.
const RECORDED: &[&str] = &[
    "apns-topic",
    "apns-push-type",
    "apns-priority",
    "apns-collapse-id",
    "apns-expiration",
];

pub(crate) struct Apns {
    pub key_id: String,
    pub team_id: String,
    pub topic: String,
    pub public_key: DecodingKey,
}

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/3/device/{token}", post(send))
}

#[derive(Deserialize)]
struct Claims {
    iss: String,
    iat: u64,
}

fn reason(status: StatusCode, reason: &str) -> Response {
    let mut body = json!({"reason": reason});
    if status == StatusCode::GONE {
        body["timestamp"] = json!(now_ms());
    }
    (status, Json(body)).into_response()
}

impl Apns {
    /// The provider token, checked as Apple does; the error is Apple's reason.
    fn check_token(&self, headers: &HeaderMap) -> Result<String, &'static str> {
        let jwt = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("bearer "))
            .ok_or("MissingProviderToken")?;
        let header = jsonwebtoken::decode_header(jwt).map_err(|_| "InvalidProviderToken")?;
        if header.alg != Algorithm::ES256 || header.kid.as_deref() != Some(self.key_id.as_str()) {
            return Err("InvalidProviderToken");
        }
        let mut validation = Validation::new(Algorithm::ES256);
        validation.validate_exp = false;
        validation.set_required_spec_claims::<&str>(&[]);
        let claims = jsonwebtoken::decode::<Claims>(jwt, &self.public_key, &validation)
            .map_err(|_| "InvalidProviderToken")?
            .claims;
        if claims.iss != self.team_id {
            return Err("InvalidProviderToken");
        }
        if now_ms() / 1000 > claims.iat + TOKEN_MAX_AGE_SECS {
            return Err("ExpiredProviderToken");
        }
        Ok(jwt.to_owned())
    }
}

async fn send(
    State(shared): State<Arc<Shared>>,
    Path(device): Path<String>,
    version: Version,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let apns = &shared.apns;
    let recorder = &shared.recorder;
    let refuse = |status: StatusCode, why: &str| {
        recorder.attempt(PLATFORM, &device, status.as_u16(), why);
        reason(status, why)
    };
    if version != Version::HTTP_2 {
        return refuse(StatusCode::HTTP_VERSION_NOT_SUPPORTED, "HTTP2Required");
    }
    let jwt = match apns.check_token(&headers) {
        Ok(jwt) => jwt,
        Err(why) => return refuse(StatusCode::FORBIDDEN, why),
    };
    recorder.provider_token_seen(&jwt);
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match header("apns-topic") {
        None => return refuse(StatusCode::BAD_REQUEST, "MissingTopic"),
        Some(topic) if topic != apns.topic => return refuse(StatusCode::BAD_REQUEST, "BadTopic"),
        Some(_) => {}
    }
    if !matches!(header("apns-push-type"), Some("alert" | "background")) {
        return refuse(StatusCode::BAD_REQUEST, "InvalidPushType");
    }
    if header("apns-collapse-id").is_some_and(|id| id.len() > 64) {
        return refuse(StatusCode::BAD_REQUEST, "BadCollapseId");
    }
    if device.is_empty() || !device.bytes().all(|b| b.is_ascii_hexdigit()) {
        return refuse(StatusCode::BAD_REQUEST, "BadDeviceToken");
    }
    match recorder.scripted(PLATFORM, &[&device]) {
        Some(Scripted::Outage(outage)) => {
            return outage.answer(|status| refuse(status, "ServiceUnavailable"));
        }
        Some(Scripted::Dead) => return refuse(StatusCode::GONE, "Unregistered"),
        Some(Scripted::Invalid) => return refuse(StatusCode::BAD_REQUEST, "BadDeviceToken"),
        None => {}
    }
    if body.len() > 4096 {
        return refuse(StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLarge");
    }
    let payload: Value = match serde_json::from_slice(&body) {
        Ok(payload @ Value::Object(_)) if payload.get("aps").is_some_and(Value::is_object) => {
            payload
        }
        _ => return refuse(StatusCode::BAD_REQUEST, "PayloadEmpty"),
    };
    let recorded = record::headers(&headers, RECORDED);
    recorder.accept(PLATFORM, &device, recorded, payload);
    let mut response = StatusCode::OK.into_response();
    if let Ok(id) = keys::random_hex(16).parse() {
        response.headers_mut().insert("apns-id", id);
    }
    response
}
