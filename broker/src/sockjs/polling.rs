//! The polling transports: `xhr` (POST, frames as lines) and `jsonp` (GET, frames as calls of
//! the page's callback). Each request carries one frame (or `o` when it opened the session)
//! and ends; the client polls again at once.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::receiver::{Mode, Wrapping};
use super::{Receive, SockJs, cors};

pub async fn xhr(
    State(sockjs): State<SockJs>,
    Path(ids): Path<(String, String)>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let receive = Receive {
        wrapping: Wrapping::Xhr,
        mode: Mode::Polling,
        prelude: String::new(),
        content_type: "application/javascript;charset=UTF-8",
    };
    sockjs.receive(ids, peer, &headers, receive)
}

pub async fn jsonp(
    State(sockjs): State<SockJs>,
    Path(ids): Path<(String, String)>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let callback = match callback(&query) {
        Ok(callback) => callback,
        Err(refused) => return refused,
    };
    let receive = Receive {
        wrapping: Wrapping::Jsonp(callback),
        mode: Mode::Polling,
        prelude: String::new(),
        content_type: "application/javascript;charset=UTF-8",
    };
    sockjs.receive(ids, peer, &headers, receive)
}

/// The CORS preflight of the POST transports.
pub async fn preflight(headers: HeaderMap) -> Response {
    cors::preflight(&headers, "OPTIONS, POST")
}

/// The `c` query parameter naming the page's callback (`htmlfile`, `jsonp`): required, and
/// only characters that cannot break out of the script it is written into.
pub fn callback(query: &HashMap<String, String>) -> Result<String, Response> {
    let Some(callback) = query.get("c") else {
        return Err(server_error("\"callback\" parameter required"));
    };
    let valid = !callback.is_empty()
        && callback
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.');
    if valid {
        Ok(callback.clone())
    } else {
        Err(server_error("invalid \"callback\" parameter"))
    }
}

/// The protocol's answer to bad input: 500 with the reason as plain text.
pub fn server_error(reason: &'static str) -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, reason).into_response()
}
