//! Why a SockJS request was refused, and the answer each reason gets: the statuses and
//! plain-text reasons SockJS servers give, so clients and their tests see what they expect.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::admission::Refusal;

#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// An unknown or closed session, or a path SockJS would not accept.
    #[error("")]
    NotFound,
    #[error("origin not allowed\n")]
    Origin,
    #[error("shutting down\n")]
    ShuttingDown,
    #[error("Payload expected.")]
    PayloadExpected,
    #[error("Broken JSON encoding.")]
    BrokenJson,
    #[error("\"callback\" parameter required")]
    CallbackRequired,
    #[error("invalid \"callback\" parameter")]
    CallbackInvalid,
    /// Over the client's admission limits: answered as a WebSocket upgrade would be.
    #[error(transparent)]
    Admission(#[from] Refusal),
}

impl From<super::frame::BrokenJson> for Refused {
    fn from(_: super::frame::BrokenJson) -> Self {
        Refused::BrokenJson
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let status = match &self {
            Refused::NotFound => StatusCode::NOT_FOUND,
            Refused::Origin => StatusCode::FORBIDDEN,
            Refused::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            Refused::PayloadExpected
            | Refused::BrokenJson
            | Refused::CallbackRequired
            | Refused::CallbackInvalid => StatusCode::INTERNAL_SERVER_ERROR,
            Refused::Admission(refusal) => return refusal.into_response(),
        };
        (status, self.to_string()).into_response()
    }
}
