//! FCM HTTP v1 as the broker meets it: Google's OAuth token endpoint, which verifies the
//! JWT-bearer grant's RS256 signature against the service account's public key, and
//! `messages:send`, which wants a bearer token the endpoint issued and a well-formed
//! `message`, and answers with Google's error shapes.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Shared;
use crate::keys;
use crate::record::Scripted;

const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const PLATFORM: &str = "fcm";

/// The service account the testbed issued, and the access tokens it granted.
pub(crate) struct Fcm {
    pub project_id: String,
    pub client_email: String,
    pub token_uri: String,
    pub public_key: DecodingKey,
    pub token_ttl: Duration,
    pub access_tokens: Mutex<HashMap<String, Instant>>,
}

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/token", post(grant))
        .route("/v1/projects/{project}/messages:send", post(send))
}

#[derive(Deserialize)]
struct GrantForm {
    grant_type: String,
    assertion: String,
}

#[derive(Deserialize)]
struct GrantClaims {
    scope: String,
    iat: u64,
    exp: u64,
}

fn grant_error(description: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": "invalid_grant", "error_description": description})),
    )
        .into_response()
}

async fn grant(State(shared): State<Arc<Shared>>, Form(form): Form<GrantForm>) -> Response {
    let fcm = &shared.fcm;
    if form.grant_type != GRANT_TYPE {
        return grant_error(format!("unsupported grant_type {}", form.grant_type));
    }
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[&fcm.token_uri]);
    validation.set_issuer(&[&fcm.client_email]);
    validation.set_required_spec_claims(&["exp", "iat", "aud", "iss"]);
    let claims =
        match jsonwebtoken::decode::<GrantClaims>(&form.assertion, &fcm.public_key, &validation) {
            Ok(data) => data.claims,
            Err(e) => return grant_error(format!("Invalid JWT Signature or claims: {e}")),
        };
    if !claims.scope.split(' ').any(|s| s == SCOPE) {
        return grant_error(format!("scope {} does not include {SCOPE}", claims.scope));
    }
    if claims.exp.saturating_sub(claims.iat) > 3600 {
        return grant_error("Invalid JWT: exp is more than an hour after iat".into());
    }
    let token = format!("ya29.testbed-{}", keys::random_hex(24));
    fcm.access_tokens
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(token.clone(), Instant::now() + fcm.token_ttl);
    shared.recorder.granted();
    Json(json!({
        "access_token": token,
        "expires_in": fcm.token_ttl.as_secs(),
        "token_type": "Bearer",
    }))
    .into_response()
}

fn google_error(
    status: StatusCode,
    google_status: &str,
    message: &str,
    details: Value,
) -> Response {
    (
        status,
        Json(json!({"error": {
            "code": status.as_u16(),
            "message": message,
            "status": google_status,
            "details": details,
        }})),
    )
        .into_response()
}

fn fcm_code(code: &str) -> Value {
    json!([{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}])
}

impl Fcm {
    fn bearer_valid(&self, headers: &HeaderMap) -> bool {
        let Some(token) = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return false;
        };
        self.access_tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(token)
            .is_some_and(|expiry| Instant::now() < *expiry)
    }

    pub(crate) fn revoke_all(&self) {
        self.access_tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

/// The `message` problems Google reports as INVALID_ARGUMENT.
fn check_message(message: &Value) -> Result<&str, String> {
    let token = message
        .get("token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or("message.token is required")?;
    if let Some(data) = message.get("data") {
        let data = data.as_object().ok_or("message.data must be a map")?;
        if let Some((key, _)) = data.iter().find(|(_, v)| !v.is_string()) {
            return Err(format!(
                "Invalid value at 'message.data[{key}].value' (TYPE_STRING)"
            ));
        }
    }
    if let Some(notification) = message.get("notification") {
        for field in ["title", "body"] {
            if notification.get(field).is_some_and(|v| !v.is_string()) {
                return Err(format!("message.notification.{field} must be a string"));
            }
        }
    }
    Ok(token)
}

async fn send(
    State(shared): State<Arc<Shared>>,
    Path(project): Path<String>,
    headers: HeaderMap,
    body: Json<Value>,
) -> Response {
    let fcm = &shared.fcm;
    let recorder = &shared.recorder;
    let message = body.0.get("message").cloned().unwrap_or(Value::Null);
    let device = message
        .get("token")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let refuse = |status: StatusCode, reason: &str, response: Response| {
        recorder.attempt(PLATFORM, &device, status.as_u16(), reason);
        response
    };
    if project != fcm.project_id {
        let status = StatusCode::NOT_FOUND;
        return refuse(
            status,
            "unknown project",
            google_error(
                status,
                "NOT_FOUND",
                "Requested entity was not found.",
                json!([]),
            ),
        );
    }
    if !fcm.bearer_valid(&headers) {
        let status = StatusCode::UNAUTHORIZED;
        let message =
            "Request had invalid authentication credentials. Expected OAuth 2 access token.";
        return refuse(
            status,
            "bad bearer",
            google_error(status, "UNAUTHENTICATED", message, json!([])),
        );
    }
    match recorder.scripted(PLATFORM, &[&device]) {
        Some(Scripted::Outage(outage)) => {
            return outage.answer(|status| {
                let message = "The service is currently unavailable.";
                let body = google_error(status, "UNAVAILABLE", message, fcm_code("UNAVAILABLE"));
                refuse(status, "scripted outage", body)
            });
        }
        Some(Scripted::Dead) => {
            let status = StatusCode::NOT_FOUND;
            return refuse(
                status,
                "UNREGISTERED",
                google_error(
                    status,
                    "NOT_FOUND",
                    "Requested entity was not found.",
                    fcm_code("UNREGISTERED"),
                ),
            );
        }
        Some(Scripted::Invalid) => {
            let status = StatusCode::BAD_REQUEST;
            let message = "The registration token is not a valid FCM registration token";
            return refuse(
                status,
                "INVALID_ARGUMENT",
                google_error(
                    status,
                    "INVALID_ARGUMENT",
                    message,
                    fcm_code("INVALID_ARGUMENT"),
                ),
            );
        }
        None => {}
    }
    if let Err(problem) = check_message(&message) {
        let status = StatusCode::BAD_REQUEST;
        return refuse(
            status,
            &problem,
            google_error(
                status,
                "INVALID_ARGUMENT",
                &problem,
                fcm_code("INVALID_ARGUMENT"),
            ),
        );
    }
    recorder.accept(PLATFORM, &device, BTreeMap::new(), message);
    let id = keys::random_hex(8);
    Json(json!({"name": format!("projects/{project}/messages/{id}")})).into_response()
}
