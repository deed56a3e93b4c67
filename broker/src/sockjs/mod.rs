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
//! over [`crate::transport::sockjs`]; `server.rs` is the state the handlers share and the
//! path every receiving request takes; `session.rs` keeps the registry of SockJS sessions and
//! closes those nobody polled for the disconnect delay; `receiver.rs` is the response that
//! carries frames (`frame.rs`) out; `cors.rs` the origin check, CORS and the `JSESSIONID`.

mod cors;
mod entry;
mod frame;
mod info;
mod polling;
mod receiver;
mod refused;
mod send;
mod server;
mod session;
mod streaming;
mod websocket;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

pub use entry::Entry;
use server::{SockJs, receive};

/// The SockJS routes under `/ws`, with their own session registry.
pub fn routes(gate: Entry) -> axum::Router {
    // A send body is JSON: each STOMP frame escaped, so up to twice its size and then some.
    let max_body = gate.broker.config.limits.max_frame_size * 2 + 64 * 1024;
    let session = "/ws/{server}/{session}";
    axum::Router::new()
        .route("/ws/info", get(info::info).options(info::info_preflight))
        .route("/ws/iframe.html", get(info::iframe))
        .route(&format!("{session}/websocket"), get(websocket::upgrade))
        .route(
            &format!("{session}/xhr"),
            post(receive::<polling::Xhr>).options(polling::preflight),
        )
        .route(&format!("{session}/jsonp"), get(receive::<polling::Jsonp>))
        .route(
            &format!("{session}/xhr_streaming"),
            post(receive::<streaming::XhrStreaming>).options(polling::preflight),
        )
        .route(
            &format!("{session}/eventsource"),
            get(receive::<streaming::EventSource>),
        )
        .route(
            &format!("{session}/htmlfile"),
            get(receive::<streaming::HtmlFile>),
        )
        .route(
            &format!("{session}/xhr_send"),
            post(send::xhr_send).options(polling::preflight),
        )
        .route(&format!("{session}/jsonp_send"), post(send::jsonp_send))
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(SockJs::new(gate))
}
