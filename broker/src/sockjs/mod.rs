//! The SockJS server at `/ws`, laid out as Spring lays it out, so `new SockJS(".../ws")` works
//! against Stompbox as against a Spring endpoint `withSockJS()`:
//!
//! | path | what |
//! |---|---|
//! | `GET /ws/info`, `GET /ws/iframe.html` | `info.rs` |
//! | `/ws/{server}/{session}/websocket` | `websocket.rs`: SockJS framing over a WebSocket |
//! | `.../xhr`, `.../jsonp` | `polling.rs`: one frame per request |
//! | `.../xhr_streaming`, `.../eventsource`, `.../htmlfile` | `streaming.rs` |
//! | `.../xhr_send`, `.../jsonp_send` | `send.rs`: the client's messages |
//! | `GET /ws/websocket` | plain STOMP over WebSocket (`listener.rs`, like `/ws`) |
//!
//! Each SockJS session carries one STOMP session, served by `session::serve` like any other
//! over [`crate::transport::sockjs`]; `session.rs` keeps the registry of SockJS sessions and
//! closes those nobody polled for the disconnect delay; `receiver.rs` is the response that
//! carries frames (`frame.rs`) out; `cors.rs` the origin check, CORS and the `JSESSIONID`.

mod cors;
mod frame;
mod info;
mod polling;
mod receiver;
mod send;
mod session;
mod streaming;
mod websocket;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use tokio_util::task::TaskTracker;

use crate::admission::{Admission, AdmissionPermit};
use crate::broker::Broker;
use crate::transport::Transport;
use frame::Frame;
use receiver::{Mode, Wrapping};
use session::Registry;

/// What SockJS needs of the listener serving it (its `Gate`, which it cannot name without
/// making the two modules depend on each other): the broker, who may connect, and the tracker
/// sessions run in.
#[derive(Clone)]
pub struct Entry {
    pub broker: Arc<Broker>,
    pub admission: Arc<Admission>,
    pub tracker: TaskTracker,
}

impl Entry {
    /// A STOMP session over SockJS, tracked so shutdown waits for it.
    fn session(
        &self,
        transport: Transport,
        permit: AdmissionPermit,
    ) -> impl Future<Output = ()> + Send + use<> {
        let broker = Arc::clone(&self.broker);
        self.tracker
            .track_future(crate::session::serve(transport, broker, permit))
    }
}

/// What the SockJS handlers share: the listener's gate and its sessions.
#[derive(Clone)]
pub struct SockJs {
    gate: Entry,
    registry: Arc<Registry>,
}

/// The SockJS routes under `/ws`, with their own session registry.
pub fn routes(gate: Entry) -> axum::Router {
    // A send body is JSON: each STOMP frame escaped, so up to twice its size and then some.
    let max_body = gate.broker.config.limits.max_frame_size * 2 + 64 * 1024;
    let registry = Registry::start(&gate);
    let session = "/ws/{server}/{session}";
    axum::Router::new()
        .route("/ws/info", get(info::info).options(info::info_preflight))
        .route("/ws/iframe.html", get(info::iframe))
        .route(&format!("{session}/websocket"), get(websocket::upgrade))
        .route(
            &format!("{session}/xhr"),
            post(polling::xhr).options(polling::preflight),
        )
        .route(&format!("{session}/jsonp"), get(polling::jsonp))
        .route(
            &format!("{session}/xhr_streaming"),
            post(streaming::xhr_streaming).options(polling::preflight),
        )
        .route(
            &format!("{session}/eventsource"),
            get(streaming::eventsource),
        )
        .route(&format!("{session}/htmlfile"), get(streaming::htmlfile))
        .route(
            &format!("{session}/xhr_send"),
            post(send::xhr_send).options(polling::preflight),
        )
        .route(&format!("{session}/jsonp_send"), post(send::jsonp_send))
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(SockJs { gate, registry })
}

/// The `{server}` and `{session}` segments, when SockJS would accept them: non-empty and
/// without dots.
fn session_id(server: &str, session: &str) -> Option<String> {
    let valid = |s: &str| !s.is_empty() && !s.contains('.');
    (valid(server) && valid(session)).then(|| session.to_owned())
}

/// A receiving request, whatever its transport: finds the session (or opens it, answering
/// `o`), attaches as its receiver and streams `wrapping`-wrapped frames after `prelude`.
struct Receive {
    wrapping: Wrapping,
    mode: Mode,
    prelude: String,
    content_type: &'static str,
}

impl SockJs {
    fn receive(
        &self,
        (server, session): (String, String),
        peer: SocketAddr,
        headers: &HeaderMap,
        receive: Receive,
    ) -> Response {
        let Some(id) = session_id(&server, &session) else {
            return StatusCode::NOT_FOUND.into_response();
        };
        let config = &self.gate.broker.config;
        if let Err(refused) = cors::check_origin(&config.ws_allowed_origins, headers) {
            return refused;
        }
        let Receive {
            wrapping,
            mode,
            prelude,
            content_type,
        } = receive;
        let (attached, opened) = match self.registry.get(&id) {
            Some(existing) => match existing.attach() {
                Some(attached) => (attached, false),
                None => {
                    return self.respond(
                        headers,
                        content_type,
                        receiver::refused(&wrapping, prelude),
                    );
                }
            },
            None => {
                if self.gate.broker.stopping.is_cancelled() {
                    return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
                }
                let client = self.gate.admission.client_address(peer.ip(), headers);
                match self.registry.open(&self.gate, &id, client) {
                    Ok(attached) => (attached, true),
                    Err(refusal) => return refusal.into_response(),
                }
            }
        };
        let first = if opened {
            prelude + &wrapping.wrap(&Frame::Open)
        } else {
            prelude
        };
        let body = receiver::body(
            attached,
            wrapping,
            mode,
            config.sockjs.heartbeat,
            first,
            opened,
        );
        self.respond(headers, content_type, body)
    }

    fn respond(
        &self,
        request: &HeaderMap,
        content_type: &'static str,
        body: axum::body::Body,
    ) -> Response {
        let mut response = body.into_response();
        let out = response.headers_mut();
        cors::content_type(out, content_type);
        cors::add_cors(request, out);
        cors::add_cookie(request, out);
        cors::add_no_cache(out);
        response
    }
}
