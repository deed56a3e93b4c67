//! A bounded HTTP/1.1 POST over plain TCP or rustls, for the providers that speak plain HTTP
//! (the webhook). One connection per request: a push is one request per user per window, so
//! a pool would mostly hold idle sockets; the TLS client config is built once.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::Uri;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::PushError;

/// Longest one attempt may take (connect, TLS, request, answer): a hung provider costs the
/// dispatcher one worker this long, never the chat.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Most of an answer's body read (only error details are in it).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Where requests go, and how to reach it.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    uri: Uri,
    host: String,
    port: u16,
    /// `None` for `http://`; built once, a connector per request is an `Arc` clone.
    tls: Option<Arc<rustls::ClientConfig>>,
}

/// A provider's answer.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: u16,
    pub retry_after: Option<Duration>,
    pub body: Bytes,
}

impl Endpoint {
    /// `ca_file` adds roots to the public ones (a local test provider's CA).
    pub(crate) fn new(url: &str, ca_file: Option<&Path>) -> Result<Self, PushError> {
        let bad = |reason: &str| PushError::Config(format!("{url}: {reason}"));
        let uri: Uri = url.parse().map_err(|_| bad("not a URL"))?;
        let host = uri
            .host()
            .ok_or_else(|| bad("no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let tls = match uri.scheme_str() {
            Some("https") => Some(tls_config(ca_file)?),
            Some("http") => None,
            _ => return Err(bad("the scheme must be https or http")),
        };
        Ok(Self {
            port: uri
                .port_u16()
                .unwrap_or(if tls.is_some() { 443 } else { 80 }),
            uri,
            host,
            tls,
        })
    }

    /// POSTs `body` with `headers`; a transport failure or timeout is worth a retry.
    pub(crate) async fn post(
        &self,
        headers: &[(&str, String)],
        body: Bytes,
    ) -> Result<Answer, PushError> {
        tokio::time::timeout(ATTEMPT_TIMEOUT, self.post_unbounded(headers, body))
            .await
            .map_err(|_| retry(format!("no answer within {ATTEMPT_TIMEOUT:?}")))?
    }

    async fn post_unbounded(
        &self,
        headers: &[(&str, String)],
        body: Bytes,
    ) -> Result<Answer, PushError> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| retry(format!("connect to {}: {e}", self.host)))?;
        match &self.tls {
            None => self.exchange(tcp, headers, body).await,
            Some(tls) => {
                let name = ServerName::try_from(self.host.clone())
                    .map_err(|e| PushError::Config(format!("TLS name {}: {e}", self.host)))?;
                let stream = TlsConnector::from(Arc::clone(tls))
                    .connect(name, tcp)
                    .await
                    .map_err(|e| retry(format!("TLS with {}: {e}", self.host)))?;
                self.exchange(stream, headers, body).await
            }
        }
    }

    async fn exchange<S>(
        &self,
        stream: S,
        headers: &[(&str, String)],
        body: Bytes,
    ) -> Result<Answer, PushError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| retry(format!("HTTP handshake: {e}")))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let path = self.uri.path_and_query().map_or("/", |p| p.as_str());
        let authority = self.uri.authority().map_or("", |a| a.as_str());
        let mut request = hyper::Request::post(path)
            .header(hyper::header::HOST, authority)
            .header(
                hyper::header::USER_AGENT,
                concat!("stompbox/", env!("CARGO_PKG_VERSION")),
            );
        for (name, value) in headers {
            request = request.header(*name, value.as_str());
        }
        let request = request
            .body(Full::new(body))
            .map_err(|e| PushError::Rejected(format!("request: {e}")))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| retry(format!("HTTP: {e}")))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(hyper::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        Ok(Answer {
            status,
            retry_after,
            body,
        })
    }
}

fn retry(reason: String) -> PushError {
    PushError::Retry {
        reason,
        after: None,
    }
}

/// rustls on ring trusting the webpki roots plus `ca_file`'s certificates.
pub(crate) fn tls_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, PushError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let bad = |e: String| PushError::Config(format!("--push-ca-file {}: {e}", path.display()));
        for cert in CertificateDer::pem_file_iter(path).map_err(|e| bad(e.to_string()))? {
            roots
                .add(cert.map_err(|e| bad(e.to_string()))?)
                .map_err(|e| bad(e.to_string()))?;
        }
    }
    // ring, as everywhere in the project (no aws-lc-rs build).
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| PushError::Config(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
