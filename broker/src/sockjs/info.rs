//! The two static SockJS endpoints: `GET /ws/info` (what the server offers, asked before every
//! connection) and `GET /ws/iframe.html` (the page the iframe-based transports load).

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::cors;
use super::server::SockJs;

/// The sockjs-client script the iframe page loads, the version Spring's default points at.
const CLIENT_URL: &str = "https://cdn.jsdelivr.net/npm/sockjs-client@1.6.1/dist/sockjs.min.js";

/// `{"websocket":true,"cookie_needed":true,"origins":["*:*"],"entropy":N}`. `cookie_needed`
/// is true as in Spring: the `JSESSIONID` cookie is what sticky load balancers route by.
pub async fn info(State(sockjs): State<SockJs>, headers: HeaderMap) -> Response {
    if let Err(refused) =
        cors::check_origin(&sockjs.gate.broker.config.ws_allowed_origins, &headers)
    {
        return refused.into_response();
    }
    let body = serde_json::json!({
        "websocket": true,
        "cookie_needed": true,
        "origins": ["*:*"],
        "entropy": rand::random::<u32>(),
    });
    let mut response = axum::Json(body).into_response();
    let out = response.headers_mut();
    cors::content_type(out, "application/json;charset=UTF-8");
    cors::add_cors(&headers, out);
    cors::add_no_cache(out);
    response
}

pub async fn info_preflight(headers: HeaderMap) -> Response {
    cors::preflight(&headers, "OPTIONS, GET")
}

fn iframe_page() -> String {
    format!(
        "<!DOCTYPE html>\n<html>\n<head>\n  <meta http-equiv=\"X-UA-Compatible\" content=\"IE=edge\" />\n  \
         <meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-8\" />\n  <script>\n    \
         document.domain = document.domain;\n    _sockjs_onload = function(){{SockJS.bootstrap_iframe();}};\n  \
         </script>\n  <script src=\"{CLIENT_URL}\"></script>\n</head>\n<body>\n  <h2>Don't panic!</h2>\n  \
         <p>This is a SockJS hidden iframe. It's used for cross domain magic.</p>\n</body>\n</html>"
    )
}

/// The iframe page, cached for a year under an `ETag` of its content.
pub async fn iframe(headers: HeaderMap) -> Response {
    let page = iframe_page();
    let etag = format!("\"{:016x}\"", fnv(page.as_bytes()));
    if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    let mut response = page.into_response();
    let out = response.headers_mut();
    cors::content_type(out, "text/html;charset=UTF-8");
    cors::add_long_cache(out);
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        out.insert(header::ETAG, etag);
    }
    response
}

/// FNV-1a: a stable fingerprint of the page for its `ETag` (not a security hash).
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
