//! The bearer tokens of the HTTP APIs (`--service-token` for `/api/...`, `--admin-token` for
//! `/admin/...`): who presents the configured secret in `Authorization: Bearer ...` may call.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// A configured secret, compared in constant time.
#[derive(Clone)]
pub struct BearerToken(Arc<str>);

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A secret: never in a log line.
        f.write_str("BearerToken(..)")
    }
}

impl From<&str> for BearerToken {
    fn from(token: &str) -> Self {
        Self(Arc::from(token))
    }
}

impl BearerToken {
    /// Whether `headers` carry `Authorization: Bearer <this token>`.
    pub fn admits(&self, headers: &HeaderMap) -> bool {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        // Compare in constant time: timing must not tell a guesser how much of it was right.
        presented.is_some_and(|p| {
            p.len() == self.0.len()
                && p.bytes()
                    .zip(self.0.bytes())
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0
        })
    }

    /// Middleware (`middleware::from_fn_with_state(token, BearerToken::require)`): the token
    /// is checked before anything looks at the request, so an unauthenticated caller learns
    /// nothing about what a valid one would be; refused with 401
    /// `{"code":"UNAUTHORIZED","message":...}`.
    pub async fn require(State(token): State<Self>, request: Request, next: Next) -> Response {
        if token.admits(request.headers()) {
            next.run(request).await
        } else {
            (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                Json(json!({"code": "UNAUTHORIZED", "message": "missing or wrong bearer token"})),
            )
                .into_response()
        }
    }
}
