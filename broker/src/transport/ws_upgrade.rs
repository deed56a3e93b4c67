//! The HTTP/1.1 upgrade to WebSocket (RFC 6455 section 4.2) for `/ws`: checks the request,
//! answers 101 with the accept key and the chosen subprotocol, and hands the upgraded
//! connection to the session.
//!
//! Ours rather than axum's `WebSocketUpgrade`, whose upgrade wraps the connection in
//! tungstenite (with its resident read and write buffers) before the session sees it; the
//! session's transport frames the raw connection itself ([`super::ws`]). The checks and the
//! refusals' statuses are axum's: 405 for a method other than GET, 400 for a missing or wrong
//! `Connection`, `Upgrade`, `Sec-WebSocket-Version: 13` or `Sec-WebSocket-Key`, 426 when the
//! connection cannot be upgraded.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use futures_util::future::Either;
use hyper::upgrade::{OnUpgrade, Upgraded};
use tracing::debug;

/// An HTTP request that asked to become a WebSocket, checked.
pub struct WsUpgrade {
    key: HeaderValue,
    /// Subprotocols the client offered, in its order.
    offered: Vec<HeaderValue>,
    on_upgrade: OnUpgrade,
}

/// Why a request was not an acceptable WebSocket upgrade.
#[derive(Debug, thiserror::Error)]
pub enum UpgradeRefused {
    #[error("a WebSocket upgrade must be a GET")]
    NotGet,
    #[error("missing or invalid `{0}` header for a WebSocket upgrade")]
    BadHeader(HeaderName),
    #[error("this connection cannot be upgraded")]
    NotUpgradable,
}

impl IntoResponse for UpgradeRefused {
    fn into_response(self) -> Response {
        let status = match self {
            UpgradeRefused::NotGet => StatusCode::METHOD_NOT_ALLOWED,
            UpgradeRefused::BadHeader(_) => StatusCode::BAD_REQUEST,
            UpgradeRefused::NotUpgradable => StatusCode::UPGRADE_REQUIRED,
        };
        (status, format!("{self}\n")).into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for WsUpgrade {
    type Rejection = UpgradeRefused;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if parts.method != Method::GET {
            return Err(UpgradeRefused::NotGet);
        }
        let h = &parts.headers;
        if !header_has_token(h, &header::CONNECTION, "upgrade") {
            return Err(UpgradeRefused::BadHeader(header::CONNECTION));
        }
        if !header_is(h, &header::UPGRADE, "websocket") {
            return Err(UpgradeRefused::BadHeader(header::UPGRADE));
        }
        if !header_is(h, &header::SEC_WEBSOCKET_VERSION, "13") {
            return Err(UpgradeRefused::BadHeader(header::SEC_WEBSOCKET_VERSION));
        }
        let key = h
            .get(header::SEC_WEBSOCKET_KEY)
            .cloned()
            .ok_or(UpgradeRefused::BadHeader(header::SEC_WEBSOCKET_KEY))?;
        let offered = h
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .flat_map(|v| v.as_bytes().split(|&b| b == b','))
            .filter_map(|p| HeaderValue::from_bytes(p.trim_ascii()).ok())
            .collect();
        let on_upgrade = parts
            .extensions
            .remove::<OnUpgrade>()
            .ok_or(UpgradeRefused::NotUpgradable)?;
        Ok(Self {
            key,
            offered,
            on_upgrade,
        })
    }
}

impl WsUpgrade {
    /// Answers 101 with the first of `supported` (best first) that the client offered, if
    /// any, and runs `session` on the connection once hyper hands it over.
    pub fn on_upgrade<F, Fut>(self, supported: &[&'static str], session: F) -> Response
    where
        F: FnOnce(Upgraded) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let protocol = supported
            .iter()
            .find(|s| self.offered.iter().any(|o| o.as_bytes() == s.as_bytes()))
            .map(|s| HeaderValue::from_static(s));
        // Chained rather than an `async` block: a block's captures (the upgrade, the
        // closure with the gate and the permit) would keep their slots in the task for the
        // session's life; `then` replaces the first future with the second.
        let session = self.on_upgrade.then(move |upgraded| match upgraded {
            Ok(upgraded) => Either::Left(session(upgraded)),
            Err(e) => {
                debug!(error = %e, "WebSocket upgrade failed");
                Either::Right(std::future::ready(()))
            }
        });
        tokio::spawn(session);
        let accept = tungstenite::handshake::derive_accept_key(self.key.as_bytes());
        let mut response = (
            StatusCode::SWITCHING_PROTOCOLS,
            [
                (header::CONNECTION, HeaderValue::from_static("upgrade")),
                (header::UPGRADE, HeaderValue::from_static("websocket")),
            ],
        )
            .into_response();
        let headers = response.headers_mut();
        if let Ok(accept) = HeaderValue::from_str(&accept) {
            headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
        }
        if let Some(protocol) = protocol {
            headers.insert(header::SEC_WEBSOCKET_PROTOCOL, protocol);
        }
        response
    }
}

fn header_is(headers: &HeaderMap, name: &HeaderName, value: &str) -> bool {
    headers
        .get(name)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(value.as_bytes()))
}

/// The comma-separated header holds `token` (case-insensitive), e.g. `Connection: keep-alive,
/// Upgrade` from Firefox.
fn header_has_token(headers: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.as_bytes()
            .split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}
