//! The two static SockJS endpoints: `GET /ws/info` (what the server offers, asked before every
//! connection) and `GET /ws/iframe.html` (the page the iframe-based transports load).

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::cors;
use super::server::SockJs;

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

/// `client_url` is `--sockjs-client-url`, HTML-escaped: the page must not become a way to
/// inject markup on the broker's origin.
fn iframe_page(client_url: &str) -> String {
    let client_url = escape(client_url);
    format!(
        "<!DOCTYPE html>\n<html>\n<head>\n  <meta http-equiv=\"X-UA-Compatible\" content=\"IE=edge\" />\n  \
         <meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-8\" />\n  <script>\n    \
         document.domain = document.domain;\n    _sockjs_onload = function(){{SockJS.bootstrap_iframe();}};\n  \
         </script>\n  <script src=\"{client_url}\"></script>\n</head>\n<body>\n  <h2>Don't panic!</h2>\n  \
         <p>This is a SockJS hidden iframe. It's used for cross domain magic.</p>\n</body>\n</html>"
    )
}

/// The iframe page, cached for a year under an `ETag` of its content.
pub async fn iframe(State(sockjs): State<SockJs>, headers: HeaderMap) -> Response {
    let page = iframe_page(&sockjs.gate.broker.config.sockjs.client_url);
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

/// The five characters that matter in an HTML attribute value.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// FNV-1a: a stable fingerprint of the page for its `ETag` (not a security hash).
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_url_cannot_break_out_of_its_attribute() {
        let page = iframe_page("/x.js\"></script><script>alert(1)</script>");
        assert!(page.contains("src=\"/x.js&quot;&gt;&lt;/script&gt;&lt;script&gt;alert(1)"));
        assert_eq!(
            page.matches("<script").count(),
            2,
            "only the page's own scripts"
        );
    }
}
