//! The front door: the STOMP/TCP accept loop and the HTTP server that upgrades `/ws` to
//! STOMP over WebSocket. Their TLS twins are in `tls::listener`, on the same [`Gate`] and
//! [`routes`].
//!
//! Both ask [`Admission`] before a session starts (per-address connections and rate, the node's
//! `max_connections`, the unauthenticated cap), so the limits bound sessions and their file
//! descriptors; a refused connection is told why (STOMP ERROR, or an HTTP status at the
//! upgrade) and closed instead of being left hanging in the backlog. Handshakes run in the
//! spawned task, never in the accept loop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::Service;
use tracing::error;

use crate::admission::{Admission, AdmissionPermit};
use crate::broker::Broker;
use crate::sockjs;
use crate::transport::Transport;
use crate::transport::tcp::TcpTransport;
use crate::transport::tls::TlsPeer;
use crate::transport::ws::WsTransport;
use crate::transport::ws_upgrade::WsUpgrade;
use crate::{admin, health, publish, web_root};

/// Subprotocols offered, best first.
const SUBPROTOCOLS: [&str; 3] = ["v12.stomp", "v11.stomp", "v10.stomp"];

/// How long a refused connection is given to read why before it is closed.
const REFUSAL_LINGER: Duration = Duration::from_secs(1);

/// What the accept loops share.
#[derive(Clone)]
pub struct Gate {
    pub broker: Arc<Broker>,
    /// Who may connect: every listener's accept path asks it.
    pub admission: Arc<Admission>,
    pub tracker: TaskTracker,
}

impl Gate {
    /// A session holding its admission permit to the end, tracked so shutdown can wait for it.
    pub fn session(
        &self,
        transport: Transport,
        permit: AdmissionPermit,
    ) -> impl Future<Output = ()> + Send + use<> {
        sockjs::Entry::from(self).session(transport, permit)
    }
}

/// The part of the gate the SockJS routes (and every session start) need.
impl From<&Gate> for sockjs::Entry {
    fn from(gate: &Gate) -> Self {
        Self {
            broker: Arc::clone(&gate.broker),
            admission: Arc::clone(&gate.admission),
            tracker: gate.tracker.clone(),
        }
    }
}

/// First pause after a failed accept (out of descriptors and the like), doubled up to
/// [`MAX_BACKOFF`]: pause rather than spin.
pub(crate) const FIRST_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// The next connection, with TCP_NODELAY set, until shutdown begins (`None` then); every
/// accept loop, plain and TLS, goes through it. Without TCP_NODELAY, Nagle holds small frames
/// back waiting for ACKs: the same fan-out measured a 6.8 ms median over WebSocket against
/// 0.66 ms over TCP.
pub(crate) async fn accept(
    listener: &TcpListener,
    gate: &Gate,
    backoff: &mut Duration,
) -> Option<(TcpStream, SocketAddr)> {
    loop {
        let accepted = tokio::select! {
            () = gate.broker.stopping.cancelled() => return None,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                *backoff = FIRST_BACKOFF;
                let _ = stream.set_nodelay(true);
                return Some((stream, peer));
            }
            Err(e) => {
                error!(error = %e, "accept failed; backing off");
                tokio::time::sleep(*backoff).await;
                *backoff = (*backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Accepts STOMP/TCP connections until shutdown begins.
pub async fn accept_tcp(listener: TcpListener, gate: Gate) {
    let mut backoff = FIRST_BACKOFF;
    while let Some((stream, peer)) = accept(&listener, &gate, &mut backoff).await {
        match gate.admission.admit(peer.ip()) {
            Ok(permit) => {
                tokio::spawn(gate.session(Transport::Tcp(TcpTransport::new(stream)), permit));
            }
            Err(refusal) => {
                // With no room to explain, the socket just closes (dropped here).
                if let Some(slot) = gate.admission.refusal_slot() {
                    gate.tracker
                        .spawn(refuse(stream, refusal.error_frame().freeze(), slot));
                }
            }
        }
    }
}

/// Tells a refused connection why (a STOMP ERROR frame, or an HTTP response), then closes it;
/// lingers (bounded) so the answer is read before the close, rather than lost to a reset over
/// an unread request.
async fn refuse(stream: TcpStream, answer: Bytes, _slot: OwnedSemaphorePermit) {
    let _ = tokio::time::timeout(REFUSAL_LINGER, async move {
        let mut tcp = TcpTransport::new(stream);
        if tcp.write(&answer).await.is_ok() {
            Transport::Tcp(tcp).close(REFUSAL_LINGER).await;
        }
    })
    .await;
}

/// The HTTP routes, served by HTTP and HTTPS alike: `/ws` (and SockJS under it), `/health/...`,
/// `/metrics`, `/admin/...`, `/api/publish`, the application's, and `--web-root`'s files.
pub fn routes(gate: Gate) -> axum::Router {
    // The application's own HTTP API (the chat's `/api/...`), if it has one.
    let api = gate
        .broker
        .app
        .as_ref()
        .map_or_else(axum::Router::new, |app| app.routes());
    // `--web-root`'s files answer whatever no route above claims.
    let web_root = gate.broker.config.web_root.as_deref().map(web_root::router);
    let broker = Arc::clone(&gate.broker);
    let sockjs = sockjs::routes(sockjs::Entry::from(&gate));
    let routes = axum::Router::new()
        .route("/ws", get(upgrade))
        // Spring's raw WebSocket beside its SockJS endpoint: the same as `/ws`.
        .route("/ws/websocket", get(upgrade))
        .route("/metrics", get(metrics))
        .with_state(gate)
        .merge(sockjs)
        .merge(health::routes(Arc::clone(&broker)))
        .merge(admin::routes(Arc::clone(&broker)))
        .merge(publish::routes(broker))
        .merge(api);
    match web_root {
        Some(files) => routes.fallback_service(files),
        None => routes,
    }
}

/// Serves HTTP (WebSocket upgrades at `/ws`) until shutdown begins.
///
/// A connection from a peer that is not a trusted proxy is admitted as it is accepted, like a
/// STOMP/TCP one, so idle or slow HTTP connections count against their address before any
/// request; its WebSocket upgrade then takes that permit. A trusted proxy's connections are
/// admitted at the upgrade, as the client the proxy names.
pub async fn serve_http(listener: TcpListener, gate: Gate) {
    let stopping = gate.broker.stopping.clone();
    let app = routes(gate.clone());
    let head_timeout = gate.broker.config.limits.connect_timeout;
    let connections = TaskTracker::new();
    let mut backoff = FIRST_BACKOFF;
    while let Some((stream, peer)) = accept(&listener, &gate, &mut backoff).await {
        let permit = if gate.admission.is_trusted_proxy(peer.ip()) {
            None
        } else {
            match gate.admission.admit(peer.ip()) {
                Ok(permit) => Some(permit),
                Err(refusal) => {
                    if let Some(slot) = gate.admission.refusal_slot() {
                        let response = refusal.http_response();
                        gate.tracker.spawn(refuse(stream, response, slot));
                    }
                    continue;
                }
            }
        };
        let connection = serve_connection(
            TokioIo::new(stream),
            peer,
            None,
            app.clone(),
            permit,
            head_timeout,
            stopping.clone(),
        );
        connections.spawn(connection);
    }
    // Requests in progress finish; idle keep-alive connections close now.
    connections.close();
    connections.wait().await;
}

/// The admission of an HTTP connection made as it was accepted, for its WebSocket upgrade to
/// take; dropped with the connection otherwise.
#[derive(Clone)]
struct ConnectionPermit(Arc<parking_lot::Mutex<Option<AdmissionPermit>>>);

/// One HTTP/1.1 connection, until it closes or becomes a WebSocket. Each request head must
/// arrive within `head_timeout` (the CONNECT timeout; also the keep-alive idle limit), so a
/// client that sends nothing, or a head a byte at a time, never holds it longer. `tls` is the
/// TLS layer's word on the peer when the connection came to the HTTPS listener
/// (`tls::listener`); every request carries it, so the `/ws` upgrade can pass it on.
pub(crate) async fn serve_connection<I>(
    io: I,
    peer: SocketAddr,
    tls: Option<TlsPeer>,
    app: axum::Router,
    permit: Option<AdmissionPermit>,
    head_timeout: Duration,
    stopping: CancellationToken,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let permit = ConnectionPermit(Arc::new(parking_lot::Mutex::new(permit)));
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        request.extensions_mut().insert(permit.clone());
        if let Some(tls) = &tls {
            request.extensions_mut().insert(tls.clone());
        }
        app.clone().call(request)
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(head_timeout)
        .serve_connection(io, service)
        .with_upgrades();
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => {}
        () = stopping.cancelled() => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

/// The Prometheus exposition (`crate::metrics`), with what is read at scrape time set first:
/// readiness, and sessions per user from the router's registry.
async fn metrics(State(gate): State<Gate>) -> Response {
    let broker = &gate.broker;
    let m = crate::metrics::get();
    m.ready.set(i64::from(broker.is_ready()));
    let sessions = broker.router.sessions();
    m.session
        .count_users(sessions.iter().map(|s| s.principal.name()));
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        m.render(),
    )
        .into_response()
}

/// `tls` is there when the upgrade came over HTTPS (`serve_connection` adds it to each request).
async fn upgrade(
    State(gate): State<Gate>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    connection: Option<Extension<ConnectionPermit>>,
    tls: Option<Extension<TlsPeer>>,
    headers: HeaderMap,
    ws: WsUpgrade,
) -> Response {
    let allowed = &gate.broker.config.ws_allowed_origins;
    if !allowed.is_empty() {
        let origin = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok());
        if !origin.is_some_and(|o| allowed.iter().any(|a| a == o)) {
            return (StatusCode::FORBIDDEN, "origin not allowed\n").into_response();
        }
    }
    if gate.broker.stopping.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    // Admitted when accepted (a direct client), or now as the client a trusted proxy names.
    let admitted = connection.and_then(|Extension(permit)| permit.0.lock().take());
    let permit = match admitted {
        Some(permit) => permit,
        None => {
            let client = gate.admission.client_address(peer.ip(), &headers);
            match gate.admission.admit(client) {
                Ok(permit) => permit,
                Err(refusal) => return refusal.into_response(),
            }
        }
    };
    // One WebSocket frame may carry a whole STOMP frame (the STOMP decoder bounds the rest).
    let max_frame = gate.broker.config.limits.max_frame_size + 1024;
    ws.on_upgrade(&SUBPROTOCOLS, move |upgraded| {
        let tls = tls.map(|Extension(peer)| peer);
        let transport = WsTransport::new(upgraded, max_frame, tls);
        gate.session(Transport::Ws(Box::new(transport)), permit)
    })
}

/// Binds a listener, naming the address in the error.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
}
