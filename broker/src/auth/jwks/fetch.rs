//! One GET of the JWKS document: where it lives (`--jwt-jwks-url`), how to reach it (TLS with
//! rustls on the ring provider, trusting the webpki roots or `--jwt-jwks-ca`), and what the
//! answer says about caching (`Cache-Control: max-age`).
//!
//! Plain `http://` is accepted only for a loopback host: a key set fetched in clear over a
//! network could be replaced by anyone on the path, and whoever controls the key set mints
//! tokens for every user. Each fetch opens one HTTP/1.1 connection and closes it: fetches are
//! minutes apart, so a pool would only hold idle sockets.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::Uri;
use hyper::header::{CACHE_CONTROL, HOST};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::auth::error::AuthError;

/// Longest a whole fetch (connect, TLS, request, body) may take; a hung key server must not
/// hold the single-flight lock that CONNECTs with unknown `kid`s wait on.
pub(super) const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest JWKS document read. Real key sets are a few KiB; the bound keeps a hostile or
/// broken server from filling memory.
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Why a fetch failed; logged, the previous key set stays in use.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    #[error("connect: {0}")]
    Connect(#[source] std::io::Error),
    #[error("TLS: {0}")]
    Tls(#[source] std::io::Error),
    #[error("HTTP: {0}")]
    Http(#[from] hyper::Error),
    #[error("HTTP status {0}")]
    Status(u16),
    #[error("body: {0}")]
    Body(String),
    #[error("timed out after {FETCH_TIMEOUT:?}")]
    Timeout,
}

/// What a successful fetch brought: the document and how long it may be cached.
#[derive(Debug)]
pub(crate) struct Fetched {
    pub(crate) body: Bytes,
    pub(crate) max_age: Option<Duration>,
}

/// Where the key set lives and how to reach it.
pub(crate) struct JwksSource {
    uri: Uri,
    host: String,
    port: u16,
    /// `None` for `http://` (loopback only).
    tls: Option<TlsConnector>,
}

impl std::fmt::Debug for JwksSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksSource")
            .field("uri", &self.uri)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl JwksSource {
    /// Checks `url` and builds the TLS client; `ca_file` replaces the webpki roots (a private
    /// CA). Fails at startup on a URL that could never be fetched safely.
    pub(crate) fn new(url: &str, ca_file: Option<&Path>) -> Result<Self, AuthError> {
        let bad = |reason: &str| AuthError::JwksUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let uri: Uri = url.parse().map_err(|_| bad("not a URL"))?;
        let host = uri.host().ok_or_else(|| bad("no host"))?;
        // `[::1]` comes back bracketed; sockets and TLS names want it bare.
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let (tls, default_port) = match uri.scheme_str() {
            Some("https") => (Some(tls_connector(ca_file)?), 443),
            Some("http") if is_loopback(&host) => (None, 80),
            Some("http") => {
                return Err(bad(
                    "plain http is only allowed to a loopback host; use https",
                ));
            }
            _ => return Err(bad("the scheme must be https (or http to loopback)")),
        };
        if tls.is_none() && ca_file.is_some() {
            return Err(bad("--jwt-jwks-ca is set but the URL is not https"));
        }
        let port = uri.port_u16().unwrap_or(default_port);
        Ok(Self {
            uri,
            host,
            port,
            tls,
        })
    }

    /// GETs the document, bounded by [`FETCH_TIMEOUT`] and [`MAX_BODY_BYTES`].
    pub(crate) async fn get(&self) -> Result<Fetched, FetchError> {
        tokio::time::timeout(FETCH_TIMEOUT, self.get_unbounded())
            .await
            .map_err(|_| FetchError::Timeout)?
    }

    async fn get_unbounded(&self) -> Result<Fetched, FetchError> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(FetchError::Connect)?;
        match &self.tls {
            None => self.exchange(tcp).await,
            Some(tls) => {
                let name = ServerName::try_from(self.host.clone())
                    .map_err(|e| FetchError::Tls(std::io::Error::other(e)))?;
                let stream = tls.connect(name, tcp).await.map_err(FetchError::Tls)?;
                self.exchange(stream).await
            }
        }
    }

    async fn exchange<S>(&self, stream: S) -> Result<Fetched, FetchError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        // The connection task ends with the exchange (or when the timeout drops this future
        // and with it the sender).
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let path = self
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        let authority = self.uri.authority().map_or("", |a| a.as_str()).to_owned();
        let request = hyper::Request::get(path)
            .header(HOST, authority)
            .header("accept", "application/json")
            .header(
                "user-agent",
                concat!("stompbox/", env!("CARGO_PKG_VERSION")),
            )
            .body(Empty::<Bytes>::new())
            .map_err(|e| FetchError::Body(e.to_string()))?;
        let response = sender.send_request(request).await?;
        if !response.status().is_success() {
            return Err(FetchError::Status(response.status().as_u16()));
        }
        let max_age = response
            .headers()
            .get_all(CACHE_CONTROL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(max_age);
        let body = Limited::new(response.into_body(), MAX_BODY_BYTES)
            .collect()
            .await
            .map_err(|e| FetchError::Body(e.to_string()))?
            .to_bytes();
        Ok(Fetched { body, max_age })
    }
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The `max-age` of one `Cache-Control` value; `no-cache`/`no-store` count as zero (the
/// caller's floor then applies).
fn max_age(value: &str) -> Option<Duration> {
    value.split(',').map(str::trim).find_map(|directive| {
        if directive.eq_ignore_ascii_case("no-cache") || directive.eq_ignore_ascii_case("no-store")
        {
            return Some(Duration::ZERO);
        }
        let (name, seconds) = directive.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("max-age") {
            return None;
        }
        seconds
            .trim()
            .trim_matches('"')
            .parse::<u64>()
            .ok()
            .map(Duration::from_secs)
    })
}

/// A rustls client on the ring provider trusting `ca_file`'s certificates, or the webpki
/// roots (Mozilla's list, compiled in, so the broker does not depend on the host's store).
fn tls_connector(ca_file: Option<&Path>) -> Result<TlsConnector, AuthError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        Some(path) => {
            let bad = |reason: String| AuthError::JwksCa {
                path: path.to_owned(),
                reason,
            };
            let certs = CertificateDer::pem_file_iter(path).map_err(|e| bad(e.to_string()))?;
            for cert in certs {
                let cert = cert.map_err(|e| bad(e.to_string()))?;
                roots.add(cert).map_err(|e| bad(e.to_string()))?;
            }
            if roots.is_empty() {
                return Err(bad("no certificate in the file".into()));
            }
        }
    }
    // ring, explicitly, as everywhere in the project (no aws-lc-rs build). Deprecated in
    // 0.23.48 for lacking post-quantum key exchange: what travels here are public keys.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| AuthError::JwksUrl {
            url: String::new(),
            reason: format!("TLS setup: {e}"),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_is_read_from_cache_control() {
        assert_eq!(
            max_age("public, max-age=300"),
            Some(Duration::from_secs(300))
        );
        assert_eq!(max_age("Max-Age = 60"), Some(Duration::from_secs(60)));
        assert_eq!(max_age("no-cache"), Some(Duration::ZERO));
        assert_eq!(max_age("public"), None);
        assert_eq!(max_age("max-age=soon"), None);
    }

    #[test]
    fn plain_http_only_to_loopback() {
        assert!(JwksSource::new("http://127.0.0.1:8080/jwks.json", None).is_ok());
        assert!(JwksSource::new("http://localhost/jwks", None).is_ok());
        assert!(JwksSource::new("http://[::1]:9/k", None).is_ok());
        assert!(JwksSource::new("http://keys.example.com/jwks", None).is_err());
        assert!(JwksSource::new("http://10.0.0.1/jwks", None).is_err());
        assert!(JwksSource::new("ftp://127.0.0.1/jwks", None).is_err());
        assert!(JwksSource::new("https://keys.example.com/jwks", None).is_ok());
    }
}
