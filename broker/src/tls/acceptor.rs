//! The TLS handshake of both TLS listeners, and the certificates it uses, swapped on reload.
//!
//! Each handshake takes the configuration current when it starts; [`TlsAcceptor::reload`]
//! replaces it for later handshakes only, so sessions already established keep their keys and
//! go on. A reload that fails leaves the current configuration in place.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use super::error::TlsError;
use super::server_config::ServerConfigs;
use crate::auth::ClientIdentity;
use crate::config::TlsConfig;

/// Which listener a handshake is for (they differ in ALPN).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Stomp,
    Https,
}

/// Performs TLS handshakes with the current certificates.
#[derive(Debug)]
pub struct TlsAcceptor {
    /// The settings naming the files, read again by `reload`.
    config: TlsConfig,
    current: RwLock<Arc<ServerConfigs>>,
    /// Bound on a handshake, so a peer that opens a connection and stalls holds it no longer
    /// than one that never sends CONNECT.
    handshake_timeout: Duration,
}

impl TlsAcceptor {
    /// Loads the files; fails (and the broker with it) if any cannot be used.
    pub fn new(config: &TlsConfig, handshake_timeout: Duration) -> Result<Self, TlsError> {
        let configs = ServerConfigs::load(config)?;
        Ok(Self {
            config: config.clone(),
            current: RwLock::new(Arc::new(configs)),
            handshake_timeout,
        })
    }

    /// Reads certificate, key and client CA again. New handshakes use them from now on; on
    /// error nothing changes.
    pub fn reload(&self) -> Result<(), TlsError> {
        let configs = ServerConfigs::load(&self.config)?;
        *self.current.write() = Arc::new(configs);
        Ok(())
    }

    /// The server side of a handshake, bounded in time, and who the peer's verified
    /// certificate names, if it presented one.
    pub async fn accept(
        &self,
        stream: TcpStream,
        endpoint: Endpoint,
    ) -> io::Result<(TlsStream<TcpStream>, Option<ClientIdentity>)> {
        let config = {
            let current = self.current.read();
            match endpoint {
                Endpoint::Stomp => Arc::clone(&current.stomp),
                Endpoint::Https => Arc::clone(&current.https),
            }
        };
        let handshake = tokio_rustls::TlsAcceptor::from(config).accept(stream);
        let stream = tokio::time::timeout(self.handshake_timeout, handshake)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
        // The verifier has checked the chain; the leaf comes first.
        let identity = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|leaf| ClientIdentity::from_der(leaf));
        Ok((stream, identity))
    }
}
