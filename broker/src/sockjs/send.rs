//! The client's messages over HTTP: `xhr_send` (a JSON array as the body; 204) and
//! `jsonp_send` (the array as the form field `d`, or as the body; 200 `ok`). Each message goes
//! to the STOMP session as the bytes a WebSocket message would bring. The request waits while
//! the session's inbound queue is full: backpressure on a client sending faster than its
//! session reads.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::frame::Payload;
use super::polling::server_error;
use super::{SockJs, cors, session_id};

pub async fn xhr_send(
    State(sockjs): State<SockJs>,
    Path(ids): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match sockjs.deliver(ids, &headers, &body).await {
        Ok(()) => {
            let mut response = StatusCode::NO_CONTENT.into_response();
            let out = response.headers_mut();
            cors::content_type(out, "text/plain;charset=UTF-8");
            cors::add_cors(&headers, out);
            cors::add_cookie(&headers, out);
            cors::add_no_cache(out);
            response
        }
        Err(refused) => refused,
    }
}

pub async fn jsonp_send(
    State(sockjs): State<SockJs>,
    Path(ids): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = headers.get(header::CONTENT_TYPE).is_some_and(|t| {
        t.as_bytes()
            .starts_with(b"application/x-www-form-urlencoded")
    });
    let payload = if form {
        let fields: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
        match fields.get("d") {
            Some(d) => Bytes::from(d.clone()),
            None => return server_error("Payload expected."),
        }
    } else {
        body
    };
    match sockjs.deliver(ids, &headers, &payload).await {
        Ok(()) => {
            let mut response = "ok".into_response();
            let out = response.headers_mut();
            cors::content_type(out, "text/plain;charset=UTF-8");
            cors::add_cookie(&headers, out);
            cors::add_no_cache(out);
            response
        }
        Err(refused) => refused,
    }
}

impl SockJs {
    /// Hands a send body's messages to the session: 404 for an unknown or closed session,
    /// 500 for an empty or malformed body (the reasons SockJS servers give).
    async fn deliver(
        &self,
        (server, session): (String, String),
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(), Response> {
        let id = session_id(&server, &session).ok_or(StatusCode::NOT_FOUND.into_response())?;
        cors::check_origin(&self.gate.broker.config.ws_allowed_origins, headers)?;
        let session = self
            .registry
            .get(&id)
            .ok_or(StatusCode::NOT_FOUND.into_response())?;
        if body.is_empty() {
            return Err(server_error("Payload expected."));
        }
        let text = std::str::from_utf8(body).map_err(|_| server_error("Broken JSON encoding."))?;
        let Payload(messages) = text
            .parse()
            .map_err(|_| server_error("Broken JSON encoding."))?;
        for message in messages {
            if session.inbound_tx.send(Bytes::from(message)).await.is_err() {
                return Err(StatusCode::NOT_FOUND.into_response());
            }
        }
        Ok(())
    }
}
