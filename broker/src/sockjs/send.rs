//! The client's messages over HTTP: `xhr_send` (a JSON array as the body; 204) and
//! `jsonp_send` (the array as the form field `d`, or as the body; 200 `ok`). Each message goes
//! to the STOMP session as the bytes a WebSocket message would bring. The request waits while
//! the session's inbound queue is full: backpressure on a client sending faster than its
//! session reads.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::cors;
use super::frame::Payload;
use super::refused::Refused;
use super::server::{SockJs, session_id};

const TEXT: &str = "text/plain;charset=UTF-8";

pub async fn xhr_send(
    State(sockjs): State<SockJs>,
    Path(ids): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match sockjs.deliver(ids, &headers, &body).await {
        Ok(()) => {
            let mut response = sockjs.respond(&headers, TEXT, Body::empty());
            *response.status_mut() = StatusCode::NO_CONTENT;
            response
        }
        Err(refused) => refused.into_response(),
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
            None => return Refused::PayloadExpected.into_response(),
        }
    } else {
        body
    };
    match sockjs.deliver(ids, &headers, &payload).await {
        Ok(()) => sockjs.respond(&headers, TEXT, Body::from("ok")),
        Err(refused) => refused.into_response(),
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
    ) -> Result<(), Refused> {
        let id = session_id(&server, &session).ok_or(Refused::NotFound)?;
        cors::check_origin(&self.gate.broker.config.ws_allowed_origins, headers)?;
        let session = self.registry.get(&id).ok_or(Refused::NotFound)?;
        if body.is_empty() {
            return Err(Refused::PayloadExpected);
        }
        let text = std::str::from_utf8(body).map_err(|_| Refused::BrokenJson)?;
        let Payload(messages) = text.parse()?;
        for message in messages {
            if session.inbound_tx.send(Bytes::from(message)).await.is_err() {
                return Err(Refused::NotFound);
            }
        }
        Ok(())
    }
}
