//! The TLS listeners: STOMP over TLS, and HTTPS serving the same routes as HTTP (WSS at
//! `/ws`).
//!
//! Both accept like their plain twins in `listener` and share their [`Gate`]: the connection
//! permit is taken at accept (STOMP) or at the WebSocket upgrade (HTTPS), and the handshake
//! runs in the connection's own task, never in the accept loop. What a verified client
//! certificate names travels with the transport ([`TlsPeer`]) to the session's CONNECT; over
//! HTTPS it is added to every request, where the `/ws` upgrade picks it up.

use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::task::TaskTracker;
use tower::ServiceExt;
use tracing::{debug, error, warn};

use super::acceptor::{Endpoint, TlsAcceptor};
use crate::listener::{Gate, routes};
use crate::session;
use crate::transport::Transport;
use crate::transport::tls::{TlsPeer, TlsTransport};

/// First pause after a failed accept (out of descriptors and the like), doubled up to
/// [`MAX_BACKOFF`], as the plain listener does.
const FIRST_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Accepts until shutdown begins; `None` then.
async fn accept(listener: &TcpListener, gate: &Gate, backoff: &mut Duration) -> Option<TcpStream> {
    loop {
        let accepted = tokio::select! {
            () = gate.broker.stopping.cancelled() => return None,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _)) => {
                *backoff = FIRST_BACKOFF;
                let _ = stream.set_nodelay(true);
                return Some(stream);
            }
            Err(e) => {
                error!(error = %e, "accept failed; backing off");
                tokio::time::sleep(*backoff).await;
                *backoff = (*backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Accepts STOMP-over-TLS connections until shutdown begins.
pub async fn accept_stomp_tls(listener: TcpListener, gate: Gate, acceptor: Arc<TlsAcceptor>) {
    let mut backoff = FIRST_BACKOFF;
    while let Some(stream) = accept(&listener, &gate, &mut backoff).await {
        let Ok(permit) = Arc::clone(&gate.permits).try_acquire_owned() else {
            // Telling it why would cost a handshake, which is what an overloaded broker
            // should not spend; the client sees the connection close.
            warn!("TLS connection refused: max connections reached");
            continue;
        };
        let broker = Arc::clone(&gate.broker);
        let acceptor = Arc::clone(&acceptor);
        tokio::spawn(gate.tracker.track_future(async move {
            let accepted = tokio::select! {
                accepted = acceptor.accept(stream, Endpoint::Stomp) => accepted,
                // Shutdown does not wait for handshakes: they are not sessions yet.
                () = broker.stopping.cancelled() => return,
            };
            match accepted {
                Ok((stream, identity)) => {
                    let transport = TlsTransport::new(stream, TlsPeer { identity });
                    session::serve(Transport::Tls(Box::new(transport)), broker).await;
                }
                Err(e) => debug!(error = %e, "TLS handshake failed"),
            }
            drop(permit);
        }));
    }
}

/// Serves HTTPS until shutdown begins, then lets each connection finish its request (an
/// upgraded WebSocket is a session by then, closed by the shutdown sequence like any other).
pub async fn serve_https(listener: TcpListener, gate: Gate, acceptor: Arc<TlsAcceptor>) {
    let app = routes(gate.clone());
    let connections = TaskTracker::new();
    let mut backoff = FIRST_BACKOFF;
    while let Some(stream) = accept(&listener, &gate, &mut backoff).await {
        let acceptor = Arc::clone(&acceptor);
        let app = app.clone();
        let stopping = gate.broker.stopping.clone();
        connections.spawn(async move {
            let accepted = tokio::select! {
                accepted = acceptor.accept(stream, Endpoint::Https) => accepted,
                () = stopping.cancelled() => return,
            };
            let (stream, identity) = match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    debug!(error = %e, "TLS handshake failed");
                    return;
                }
            };
            let peer = TlsPeer { identity };
            let service = hyper::service::service_fn(move |mut request| {
                request.extensions_mut().insert(peer.clone());
                app.clone().oneshot(request)
            });
            let builder = auto::Builder::new(TokioExecutor::new());
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            tokio::pin!(connection);
            let served = tokio::select! {
                served = connection.as_mut() => served,
                () = stopping.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = served {
                debug!(error = %e, "https connection ended with an error");
            }
        });
    }
    connections.close();
    connections.wait().await;
}
