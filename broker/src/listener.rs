//! The front door: the STOMP/TCP accept loop and the HTTP server that upgrades `/ws` to
//! STOMP over WebSocket. Their TLS twins are in `tls::listener`, on the same [`Gate`] and
//! [`routes`].
//!
//! Both take a connection permit before a session starts, so `max_connections` bounds the
//! sessions and their file descriptors; a connection over the limit is told so and closed
//! instead of being left hanging in the backlog. Handshakes run in the spawned task, never in
//! the accept loop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use stomp_codec::{Command, Frame, Version, encode_frame};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::task::TaskTracker;
use tracing::{error, warn};

use crate::broker::Broker;
use crate::session;
use crate::transport::Transport;
use crate::transport::tcp::TcpTransport;
use crate::transport::tls::TlsPeer;
use crate::transport::ws::WsTransport;

/// Subprotocols offered, best first.
const SUBPROTOCOLS: [&str; 3] = ["v12.stomp", "v11.stomp", "v10.stomp"];
/// WebSocket read buffer. tungstenite allocates it up front and keeps it for the connection's
/// life, so it is most of an idle WebSocket session's memory (its default is 128 KiB). It also
/// caps each read, so a 1 MiB frame takes 1,024 reads of 1 KiB: a few milliseconds, paid only
/// by large frames, against 3 KiB saved on every idle connection.
const WS_READ_BUFFER: usize = 1024;

/// What the accept loops share.
#[derive(Clone)]
pub struct Gate {
    pub broker: Arc<Broker>,
    pub permits: Arc<Semaphore>,
    pub tracker: TaskTracker,
}

impl Gate {
    /// A session holding its permit to the end, tracked so shutdown can wait for it.
    fn session(
        &self,
        transport: Transport,
        permit: OwnedSemaphorePermit,
    ) -> impl Future<Output = ()> + Send + use<> {
        let broker = Arc::clone(&self.broker);
        self.tracker.track_future(async move {
            session::serve(transport, broker).await;
            drop(permit);
        })
    }
}

/// Accepts STOMP/TCP connections until shutdown begins.
pub async fn accept_tcp(listener: TcpListener, gate: Gate) {
    let mut backoff = Duration::from_millis(10);
    loop {
        let accepted = tokio::select! {
            () = gate.broker.stopping.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => {
                backoff = Duration::from_millis(10);
                stream
            }
            Err(e) => {
                // Out of descriptors and the like: pause rather than spin.
                error!(error = %e, "accept failed; backing off");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        match Arc::clone(&gate.permits).try_acquire_owned() {
            Ok(permit) => {
                tokio::spawn(gate.session(Transport::Tcp(TcpTransport::new(stream)), permit));
            }
            Err(_) => {
                gate.tracker.spawn(refuse(stream));
            }
        }
    }
}

/// Tells a connection over the limit why it is being closed.
async fn refuse(mut stream: TcpStream) {
    warn!("connection refused: max connections reached");
    let frame = Frame::new(Command::Error)
        .header("message", "too many connections")
        .with_body("the server is at its connection limit; retry with backoff\n");
    let mut buf = bytes::BytesMut::new();
    encode_frame(&frame, Version::V1_2, &mut buf);
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(&buf).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// The HTTP routes, served by HTTP and HTTPS alike: `/ws`, `/health` and the application's.
pub fn routes(gate: Gate) -> axum::Router {
    // The application's own HTTP API (the chat's `/api/...`), if it has one.
    let api = gate
        .broker
        .app
        .as_ref()
        .map_or_else(axum::Router::new, |app| app.routes());
    axum::Router::new()
        .route("/ws", get(upgrade))
        .route("/health", get(health))
        .with_state(gate)
        .merge(api)
}

/// Serves HTTP (WebSocket upgrades at `/ws`) until shutdown begins.
pub async fn serve_http(listener: TcpListener, gate: Gate) {
    let stopping = gate.broker.stopping.clone();
    let app = routes(gate);
    // Without TCP_NODELAY, Nagle holds small WebSocket frames back waiting for ACKs: the same
    // fan-out measured a 6.8 ms median over WebSocket against 0.66 ms over TCP.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(stopping.cancelled_owned())
        .await;
    if let Err(e) = served {
        error!(error = %e, "http server failed");
    }
}

/// Liveness and the Redis link, for load balancers and the cluster test harness:
/// `{"status":"ok","node_id":N,"cluster":null | {redis_connected, redis_reconnects, ...}}`.
async fn health(State(gate): State<Gate>) -> Response {
    let broker = &gate.broker;
    let cluster = broker.cluster_health();
    axum::Json(serde_json::json!({
        "status": if broker.stopping.is_cancelled() { "stopping" } else { "ok" },
        "node_id": broker.config.node_id,
        "cluster": cluster,
    }))
    .into_response()
}

/// `tls` is there when the upgrade came over HTTPS (`tls::listener` adds it to each request).
async fn upgrade(
    State(gate): State<Gate>,
    tls: Option<Extension<TlsPeer>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
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
    let Ok(permit) = Arc::clone(&gate.permits).try_acquire_owned() else {
        warn!("websocket refused: max connections reached");
        return (StatusCode::SERVICE_UNAVAILABLE, "too many connections\n").into_response();
    };
    let max_message = gate.broker.config.limits.max_frame_size + 1024;
    ws.protocols(SUBPROTOCOLS)
        .read_buffer_size(WS_READ_BUFFER)
        .write_buffer_size(0)
        .max_message_size(max_message)
        .max_frame_size(max_message)
        .on_upgrade(move |socket| {
            let tls = tls.map(|Extension(peer)| peer);
            gate.session(
                Transport::Ws(Box::new(WsTransport::new(socket, tls))),
                permit,
            )
        })
}

/// Binds a listener, naming the address in the error.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
}
