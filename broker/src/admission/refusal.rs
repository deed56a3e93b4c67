//! Why a connection was not admitted, and how each transport says so: a STOMP ERROR frame
//! over a byte stream, an HTTP status at a WebSocket upgrade.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use stomp_codec::{Command, Frame, Version, encode_frame};
use thiserror::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum Refusal {
    #[error("this address holds its maximum of {0} connections; close one or retry later")]
    TooManyFromAddress(usize),
    #[error(
        "this address holds its maximum of {0} connections that have not completed CONNECT; \
         retry later"
    )]
    UnauthenticatedFromAddress(usize),
    #[error("this address opens connections too fast; retry in {} ms", .0.as_millis())]
    RateExceeded(Duration),
    #[error("the server is at its connection limit; retry with backoff")]
    TooManyConnections,
    #[error(
        "too many connections are still authenticating (or tracked addresses are at their \
         bound); retry with backoff"
    )]
    Busy,
}

impl Refusal {
    /// The ERROR frame's `message` header (documented in docs/protocol.md).
    pub fn message(&self) -> &'static str {
        match self {
            Refusal::TooManyFromAddress(_) | Refusal::UnauthenticatedFromAddress(_) => {
                "too many connections from your address"
            }
            Refusal::RateExceeded(_) => "connection rate exceeded",
            Refusal::TooManyConnections => "too many connections",
            Refusal::Busy => "server busy",
        }
    }

    /// 429 when the client itself is over a limit, 503 when the node is.
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::TooManyFromAddress(_)
            | Refusal::UnauthenticatedFromAddress(_)
            | Refusal::RateExceeded(_) => StatusCode::TOO_MANY_REQUESTS,
            Refusal::TooManyConnections | Refusal::Busy => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// Whole seconds until retrying can succeed, when known.
    fn retry_after(&self) -> Option<u64> {
        match self {
            Refusal::RateExceeded(wait) => Some(wait.as_secs_f64().ceil().max(1.0) as u64),
            _ => None,
        }
    }

    /// The STOMP ERROR frame, encoded (1.2 framing, which every STOMP client reads).
    pub fn error_frame(&self) -> BytesMut {
        let frame = Frame::new(Command::Error)
            .header("message", self.message())
            .header("content-type", "text/plain")
            .with_body(format!("{self}\n"));
        let mut buf = BytesMut::new();
        encode_frame(&frame, Version::V1_2, &mut buf);
        buf
    }
}

impl Refusal {
    /// A whole HTTP/1.1 response for a connection refused before its request was read.
    pub fn http_response(&self) -> Bytes {
        let status = self.status();
        let body = format!("{}: {self}\n", self.message());
        let retry_after = self
            .retry_after()
            .map(|seconds| format!("retry-after: {seconds}\r\n"))
            .unwrap_or_default();
        Bytes::from(format!(
            "HTTP/1.1 {} {}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\n\
             connection: close\r\n{retry_after}\r\n{body}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("Refused"),
            body.len(),
        ))
    }
}

/// The refusal of a WebSocket upgrade: status, `Retry-After` when known, and a body that reads
/// `message: explanation`.
impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut response = (self.status(), format!("{}: {self}\n", self.message())).into_response();
        if let Some(seconds) = self.retry_after() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
