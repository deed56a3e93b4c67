//! The streaming transports: `xhr_streaming`, `eventsource` and `htmlfile`. One response
//! carries frames as they come until it has carried the streaming limit; the client then
//! opens the next. Each starts with a prelude some browsers need before they hand the
//! response to the page.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;

use super::polling::callback;
use super::receiver::{Mode, Wrapping};
use super::{Receive, SockJs};

/// Bytes of `h` before the first frame of `xhr_streaming`: older browsers deliver nothing of a
/// streaming XHR before 2 KiB arrived.
const XHR_PRELUDE: usize = 2048;
/// The `htmlfile` page is padded to this size, for the same reason.
const HTMLFILE_PRELUDE: usize = 1024;

pub async fn xhr_streaming(
    State(sockjs): State<SockJs>,
    Path(ids): Path<(String, String)>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let receive = Receive {
        wrapping: Wrapping::Xhr,
        mode: Mode::Streaming(sockjs.gate.broker.config.sockjs.stream_limit),
        prelude: "h".repeat(XHR_PRELUDE) + "\n",
        content_type: "application/javascript;charset=UTF-8",
    };
    sockjs.receive(ids, peer, &headers, receive)
}

pub async fn eventsource(
    State(sockjs): State<SockJs>,
    Path(ids): Path<(String, String)>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let receive = Receive {
        wrapping: Wrapping::EventSource,
        mode: Mode::Streaming(sockjs.gate.broker.config.sockjs.stream_limit),
        prelude: "\r\n".to_owned(),
        content_type: "text/event-stream;charset=UTF-8",
    };
    sockjs.receive(ids, peer, &headers, receive)
}

pub async fn htmlfile(
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
    let mut prelude = format!(
        "<!doctype html>\n<html><head>\n  <meta http-equiv=\"X-UA-Compatible\" content=\"IE=edge\" />\n  \
         <meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-8\" />\n</head><body>\
         <h2>Don't panic!</h2>\n  <script>\n    document.domain = document.domain;\n    \
         var c = parent.{callback};\n    c.start();\n    function p(d) {{c.message(d);}};\n    \
         window.onload = function() {{c.stop();}};\n  </script>"
    );
    let padding = HTMLFILE_PRELUDE.saturating_sub(prelude.len());
    prelude.push_str(&" ".repeat(padding));
    prelude.push_str("\r\n");
    let receive = Receive {
        wrapping: Wrapping::HtmlFile,
        mode: Mode::Streaming(sockjs.gate.broker.config.sockjs.stream_limit),
        prelude,
        content_type: "text/html;charset=UTF-8",
    };
    sockjs.receive(ids, peer, &headers, receive)
}
