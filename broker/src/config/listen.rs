//! The listeners: where STOMP over TCP and HTTP (WebSocket at `/ws`) listen, which WebSocket
//! origins may connect, and the rule that a listener other hosts can reach needs
//! authentication.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::auth::AuthConfig;
use super::error::ConfigError;
use super::setting::settings;

settings! {
    /// Where the broker listens. Resolved into `Config`'s top-level fields.
    pub struct ListenSettings, layer ListenLayer, heading Some("Listeners");

    /// STOMP over TCP. Loopback by default: beyond loopback needs authentication.
    stomp_listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 61613)),
        "ADDR:PORT", "STOMP over TCP listen address";
    /// HTTP: WebSocket at `/ws`, the HTTP API and metrics.
    http_listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 15674)),
        "ADDR:PORT", "HTTP listen address, WebSocket at /ws";
    /// WebSocket `Origin` allow-list; empty allows any origin (auth is by passcode, not
    /// cookies). The flag is singular because it repeats; in a file a list reads better plural.
    ws_allowed_origins as "ws_allowed_origin" | "ws_allowed_origins": Vec<String> = Vec::new(),
        "ORIGIN", "Allowed WebSocket Origin; repeat or comma-separate for several; none set allows any origin";
    /// Static files served on the HTTP listeners (the chat page, `examples/web`); routes the
    /// broker owns (`/ws`, `/health`, `/api/...`) come first.
    web_root: Option<PathBuf> = None,
        "DIR", "Serve DIR's files over HTTP (e.g. examples/web, the chat page); unset serves none";
    /// SockJS (`/ws/...`): how often an open receiver gets an `h` frame when idle. 25 s is
    /// SockJS's and Spring's default, under the 30 s idle cut of common proxies.
    sockjs_heartbeat: Duration = Duration::from_secs(25),
        "DURATION", "SockJS heart-beat frame interval on idle receivers";
    /// SockJS: how long a session may go without a receiver (a poll, a stream) before it is
    /// closed. 5 s is SockJS's and Spring's default.
    sockjs_disconnect_delay: Duration = Duration::from_secs(5),
        "DURATION", "SockJS session closes after this long without a poll or stream";
    /// SockJS: bytes one streaming response carries before the client is made to open a new
    /// one, so proxies and browsers do not buffer an endless response. Spring's default.
    sockjs_stream_limit: usize = 128 * 1024,
        "BYTES", "Bytes per SockJS streaming response before the client reopens it";
    /// SockJS: the sockjs-client script `/ws/iframe.html` loads (the iframe transports run it
    /// on the broker's origin). Spring's default is the public CDN; a site that must not depend
    /// on it serves its own copy (e.g. with `--web-root`) and names it here.
    sockjs_client_url: String = "https://cdn.jsdelivr.net/npm/sockjs-client@1.6.1/dist/sockjs.min.js".to_string(),
        "URL", "sockjs-client script the SockJS iframe page loads";
}

/// The SockJS server's timings and limits (`sockjs::`).
#[derive(Debug, Clone)]
pub struct SockJsConfig {
    pub heartbeat: Duration,
    pub disconnect_delay: Duration,
    pub stream_limit: usize,
    /// The script `/ws/iframe.html` loads.
    pub client_url: String,
}

impl From<&ListenSettings> for SockJsConfig {
    fn from(listen: &ListenSettings) -> Self {
        Self {
            heartbeat: listen.sockjs_heartbeat,
            disconnect_delay: listen.sockjs_disconnect_delay,
            stream_limit: listen.sockjs_stream_limit,
            client_url: listen.sockjs_client_url.clone(),
        }
    }
}

/// Refuses a listener other hosts can reach when no authentication is configured (dev mode
/// believes any `login`), unless `allow_anonymous` says it is on purpose.
pub(super) fn check_reachable(
    auth: &AuthConfig,
    stomp_listen: SocketAddr,
    http_listen: SocketAddr,
) -> Result<(), ConfigError> {
    if auth.is_configured() || auth.allow_anonymous {
        return Ok(());
    }
    for (listener, addr) in [
        ("--stomp-listen", stomp_listen),
        ("--http-listen", http_listen),
    ] {
        if !addr.ip().to_canonical().is_loopback() {
            return Err(ConfigError::Unauthenticated { listener, addr });
        }
    }
    Ok(())
}

/// A `--web-root` that is not a directory is a typo: refused at startup rather than answering
/// 404 to every page.
pub(super) fn check_web_root(web_root: Option<&Path>) -> Result<(), ConfigError> {
    match web_root {
        Some(dir) if !dir.is_dir() => Err(ConfigError::Invalid {
            key: "web_root",
            reason: format!("{} is not a directory", dir.display()),
        }),
        _ => Ok(()),
    }
}
