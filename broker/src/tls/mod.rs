//! TLS on the broker's own listeners: STOMP over TLS (`--stomp-tls-listen`) and HTTPS with WSS
//! (`--https-listen`), with certificates reloaded on SIGHUP and optional client certificates
//! that authenticate the session (docs/security/tls.md).
//!
//! [`TlsListeners`] is what `Server` holds: the bound sockets and the [`TlsAcceptor`] with the
//! current certificates, which `reload` (SIGHUP) reloads with the users file and ACL rules.
//! Sessions over TLS are sessions like any other: the transport (`transport::tls`, or a
//! WebSocket marked as upgraded over HTTPS) is the only difference, and the client
//! certificate's user (`auth::ClientIdentity`) is checked at CONNECT.

mod acceptor;
mod error;
mod listener;
mod server_config;

pub use acceptor::{Endpoint, TlsAcceptor};
pub use error::TlsError;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::listener::{Gate, bind};

/// The TLS listeners of a broker, bound and not yet serving.
pub struct TlsListeners {
    acceptor: Arc<TlsAcceptor>,
    stomp: Option<TcpListener>,
    https: Option<TcpListener>,
}

impl TlsListeners {
    /// Loads the certificates and binds the configured TLS listeners; `None` when none is
    /// configured.
    pub async fn bind(config: &Config) -> Result<Option<Self>, TlsError> {
        let tls = &config.tls;
        if !tls.is_enabled() {
            return Ok(None);
        }
        let acceptor = Arc::new(TlsAcceptor::new(tls, config.limits.connect_timeout)?);
        let stomp = match tls.stomp_tls_listen {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        let https = match tls.https_listen {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        Ok(Some(Self {
            acceptor,
            stomp,
            https,
        }))
    }

    pub fn stomp_addr(&self) -> Option<SocketAddr> {
        self.stomp.as_ref().and_then(|l| l.local_addr().ok())
    }

    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.https.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The handshakes' certificates, for the SIGHUP reload.
    pub fn acceptor(&self) -> Arc<TlsAcceptor> {
        Arc::clone(&self.acceptor)
    }

    /// Starts the accept loops; each ends when shutdown begins.
    pub fn spawn(self, gate: &Gate) -> Vec<JoinHandle<()>> {
        let mut tasks = Vec::new();
        if let Some(stomp) = self.stomp {
            let acceptor = Arc::clone(&self.acceptor);
            tasks.push(tokio::spawn(listener::accept_stomp_tls(
                stomp,
                gate.clone(),
                acceptor,
            )));
        }
        if let Some(https) = self.https {
            let acceptor = Arc::clone(&self.acceptor);
            tasks.push(tokio::spawn(listener::serve_https(
                https,
                gate.clone(),
                acceptor,
            )));
        }
        tasks
    }
}
