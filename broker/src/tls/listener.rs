//! The TLS listeners: STOMP over TLS, and HTTPS serving the same routes as HTTP (WSS at
//! `/ws`).
//!
//! Both accept like their plain twins in `listener` and share their [`Gate`]: a connection is
//! admitted (per-address limits, `max_connections`) as it is accepted, before any handshake;
//! the handshake runs in the connection's own task, never in the accept loop. What a verified
//! client certificate names travels with the transport ([`TlsPeer`]) to the session's
//! CONNECT; over HTTPS it is added to every request, where the `/ws` upgrade picks it up.

use std::sync::Arc;

use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;
use tracing::debug;

use super::acceptor::{Endpoint, TlsAcceptor};
use crate::listener::{FIRST_BACKOFF, Gate, accept, routes, serve_connection};
use crate::session;
use crate::transport::Transport;
use crate::transport::tls::{TlsPeer, TlsTransport};

/// Accepts STOMP-over-TLS connections until shutdown begins.
pub async fn accept_stomp_tls(listener: TcpListener, gate: Gate, acceptor: Arc<TlsAcceptor>) {
    let mut backoff = FIRST_BACKOFF;
    while let Some((stream, peer)) = accept(&listener, &gate, &mut backoff).await {
        // A refused connection is closed without the ERROR frame a plain one gets: telling it
        // why would cost a handshake, which is what a refused peer should not get.
        let Ok(permit) = gate.admission.admit(peer.ip()) else {
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
                    session::serve(Transport::Tls(Box::new(transport)), broker, permit).await;
                }
                Err(e) => debug!(error = %e, "TLS handshake failed"),
            }
        }));
    }
}

/// Serves HTTPS until shutdown begins, then lets each connection finish its request (an
/// upgraded WebSocket is a session by then, closed by the shutdown sequence like any other).
/// Admission as over HTTP: at accept for a direct client, at the upgrade for a trusted proxy's.
pub async fn serve_https(listener: TcpListener, gate: Gate, acceptor: Arc<TlsAcceptor>) {
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
                // Closed without an answer, for the reason the STOMP TLS listener gives.
                Err(_) => continue,
            }
        };
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
            let tls = TlsPeer { identity };
            serve_connection(
                TokioIo::new(stream),
                peer,
                Some(tls),
                app,
                permit,
                head_timeout,
                stopping,
            )
            .await;
        });
    }
    connections.close();
    connections.wait().await;
}
