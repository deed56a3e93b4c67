//! What every SockJS response says about who may call it: the origin check against
//! `--ws-allowed-origin`, CORS with credentials (sockjs-client sends cookies with its
//! cross-origin requests), the `JSESSIONID` cookie sticky load balancers route by, and the
//! caching headers of the protocol.

use axum::http::header::{self, HeaderValue};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::refused::Refused;

/// How long a browser may cache a preflight or the iframe page: a year, as SockJS servers do.
const CACHE_SECONDS: u32 = 31_536_000;

/// The request's `Origin` when it is allowed. A request without one is not cross-origin (a
/// same-origin GET, or a client outside a browser) and passes, as in Spring; one that names
/// an origin outside a configured allow-list is refused (403).
pub fn check_origin(allowed: &[String], request: &HeaderMap) -> Result<(), Refused> {
    let Some(origin) = request.get(header::ORIGIN) else {
        return Ok(());
    };
    let ok = allowed.is_empty()
        || origin
            .to_str()
            .is_ok_and(|o| allowed.iter().any(|a| a == o));
    if ok { Ok(()) } else { Err(Refused::Origin) }
}

/// Adds the CORS headers: the caller's origin echoed with credentials allowed (`*` cannot
/// carry credentials), and the request headers a preflight asked for.
pub fn add_cors(request: &HeaderMap, response: &mut HeaderMap) {
    let origin = request
        .get(header::ORIGIN)
        .filter(|o| o.as_bytes() != b"null")
        .cloned()
        .unwrap_or(HeaderValue::from_static("*"));
    response.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    response.insert(
        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
        HeaderValue::from_static("true"),
    );
    if let Some(asked) = request.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
        response.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
    }
    response.append(header::VARY, HeaderValue::from_static("Origin"));
}

/// Echoes the client's `JSESSIONID`, or sets a placeholder, so a load balancer that sticks by
/// that cookie sends the session's later requests to this node.
pub fn add_cookie(request: &HeaderMap, response: &mut HeaderMap) {
    let id = request
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().strip_prefix("JSESSIONID="))
        .find(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_graphic() && b != b';'))
        .unwrap_or("dummy");
    if let Ok(cookie) = HeaderValue::from_str(&format!("JSESSIONID={id};path=/")) {
        response.insert(header::SET_COOKIE, cookie);
    }
}

pub fn add_no_cache(response: &mut HeaderMap) {
    response.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, no-cache, must-revalidate, max-age=0"),
    );
}

/// The answer to a CORS preflight (`OPTIONS`) for an endpoint allowing `methods`.
pub fn preflight(request: &HeaderMap, methods: &'static str) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    add_cors(request, headers);
    add_cookie(request, headers);
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(methods),
    );
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from(CACHE_SECONDS),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_str(&format!("public, max-age={CACHE_SECONDS}"))
            .unwrap_or(HeaderValue::from_static("public")),
    );
    response
}

/// A long cache for the static iframe page.
pub fn add_long_cache(response: &mut HeaderMap) {
    if let Ok(value) = HeaderValue::from_str(&format!("public, max-age={CACHE_SECONDS}")) {
        response.insert(header::CACHE_CONTROL, value);
    }
}

/// `Content-Type` with the charset SockJS clients expect.
pub fn content_type(response: &mut HeaderMap, value: &'static str) {
    response.insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
}
