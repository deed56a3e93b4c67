//! tokio-postgres's TLS seam for [`PostgresTls`]: a `MakeTlsConnect` per host, a handshake on
//! tokio-rustls, and the resulting stream.
//!
//! A handshake that fails on the certificate (rustls' own error) comes out as that error, not
//! wrapped in `io::Error`, so the store classifies it as permanent (a wrong CA does not heal
//! by retrying); a socket that broke mid-handshake stays an `io::Error`, transient.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::Socket;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};

use super::PostgresTls;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl MakeTlsConnect<Socket> for PostgresTls {
    type Stream = PostgresTlsStream;
    type TlsConnect = HostTls;
    type Error = BoxError;

    /// `host` is empty for a Unix socket, where PostgreSQL never offers TLS: the connector is
    /// made anyway (tokio-postgres asks for it first) and only fails if a handshake is tried.
    fn make_tls_connect(&mut self, host: &str) -> Result<HostTls, BoxError> {
        let server_name = if host.is_empty() {
            None
        } else {
            Some(ServerName::try_from(host.to_owned())?)
        };
        Ok(HostTls {
            config: self.config.clone(),
            server_name,
        })
    }
}

/// The connector for one host.
pub struct HostTls {
    config: Option<Arc<ClientConfig>>,
    server_name: Option<ServerName<'static>>,
}

impl TlsConnect<Socket> for HostTls {
    type Stream = PostgresTlsStream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<PostgresTlsStream, BoxError>> + Send>>;

    fn connect(self, socket: Socket) -> Self::Future {
        Box::pin(async move {
            let (Some(config), Some(server_name)) = (self.config, self.server_name) else {
                return Err("TLS needs a host name (sslmode=disable for a Unix socket)".into());
            };
            let connector = tokio_rustls::TlsConnector::from(config);
            match connector.connect(server_name, socket).await {
                Ok(stream) => Ok(PostgresTlsStream(stream)),
                Err(e) => Err(unwrap_rustls(e)),
            }
        })
    }
}

/// tokio-rustls reports rustls' errors inside an `io::Error`; take them out.
fn unwrap_rustls(e: io::Error) -> BoxError {
    if !e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()) {
        return Box::new(e);
    }
    e.into_inner()
        .unwrap_or_else(|| "TLS handshake failed".into())
}

/// A TLS connection to PostgreSQL.
pub struct PostgresTlsStream(tokio_rustls::client::TlsStream<Socket>);

impl tokio_postgres::tls::TlsStream for PostgresTlsStream {
    /// No `tls-server-end-point` binding: SCRAM then authenticates without channel binding
    /// (tokio-postgres' default `channel_binding=prefer` allows it), as libpq does when built
    /// without it.
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

impl AsyncRead for PostgresTlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for PostgresTlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
