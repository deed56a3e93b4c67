//! The rustls configuration of the TLS listeners, built from the PEM files each time they are
//! (re)loaded.
//!
//! The crypto provider is given explicitly (ring), never taken from a process-wide default, so
//! no other crate's choice can change what the listeners negotiate.

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::error::TlsError;
use crate::config::{ClientAuth, TlsConfig};

/// ALPN of the HTTPS listener. HTTP/1.1 only: WebSocket over HTTP/2 needs extended CONNECT,
/// which browsers then use instead of the upgrade every STOMP client library expects.
const HTTPS_ALPN: &[u8] = b"http/1.1";

/// One load of the files: the configuration of each TLS listener.
#[derive(Debug)]
pub(super) struct ServerConfigs {
    /// STOMP over TLS: no ALPN (STOMP has no registered protocol id).
    pub(super) stomp: Arc<ServerConfig>,
    /// HTTPS: ALPN `http/1.1`.
    pub(super) https: Arc<ServerConfig>,
}

impl ServerConfigs {
    /// Reads the certificate chain, the key and the client CA named in `config`.
    pub(super) fn load(config: &TlsConfig) -> Result<Self, TlsError> {
        let cert = config
            .tls_cert
            .as_deref()
            .ok_or(TlsError::Missing("--tls-cert"))?;
        let key = config
            .tls_key
            .as_deref()
            .ok_or(TlsError::Missing("--tls-key"))?;
        let chain = certificates("certificate chain", cert)?;
        let key = PrivateKeyDer::from_pem_file(key).map_err(|source| TlsError::Pem {
            what: "private key",
            path: key.to_owned(),
            source,
        })?;

        let provider = provider();
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()?;
        let builder = match config.tls_client_ca.as_deref() {
            None => builder.with_no_client_auth(),
            Some(ca) => builder.with_client_cert_verifier(client_verifier(
                ca,
                config.tls_client_auth,
                provider,
            )?),
        };
        let mut stomp = builder.with_single_cert(chain, key)?;
        // No TLS 1.3 session tickets on raw STOMP (as RabbitMQ's Erlang TLS by default): a
        // ticket arrives after the handshake, and a client that reads and writes its TLS socket
        // from two threads (stomp.py: a receiver thread, CONNECT from the caller) can corrupt
        // its next record while its reader takes the ticket ("cannot decrypt peer's message"
        // here, about one connection in four in tests/test_tls.py). STOMP connections live
        // long; resumption saves little. HTTPS (browsers, which resume often) keeps them.
        let tickets = stomp.send_tls13_tickets;
        stomp.send_tls13_tickets = 0;
        let mut https = stomp.clone();
        https.send_tls13_tickets = tickets;
        https.alpn_protocols = vec![HTTPS_ALPN.to_vec()];
        Ok(Self {
            stomp: Arc::new(stomp),
            https: Arc::new(https),
        })
    }
}

/// rustls's ring provider, explicitly. rustls 0.23.48 deprecates it for lacking post-quantum
/// key exchange (X25519MLKEM768, only in the aws-lc-rs provider); the workspace builds rustls
/// with ring alone (no cmake or C toolchain for aws-lc), and classical ECDHE is what every
/// STOMP and browser client here negotiates anyway.
#[allow(deprecated)]
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Every certificate in a PEM file; none is an error.
fn certificates(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem_error = |source| TlsError::Pem {
        what,
        path: path.to_owned(),
        source,
    };
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(pem_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_error)?;
    if chain.is_empty() {
        return Err(pem_error(rustls_pki_types::pem::Error::NoItemsFound));
    }
    Ok(chain)
}

/// Verifies client certificates against the CAs in `ca`; with `Optional`, a client may also
/// present none.
fn client_verifier(
    ca: &Path,
    mode: ClientAuth,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, TlsError> {
    let mut roots = RootCertStore::empty();
    for certificate in certificates("client CA", ca)? {
        roots
            .add(certificate)
            .map_err(|source| TlsError::ClientCa {
                path: ca.to_owned(),
                source,
            })?;
    }
    let builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
    let builder = match mode {
        ClientAuth::Optional => builder.allow_unauthenticated(),
        ClientAuth::Required => builder,
    };
    Ok(builder.build()?)
}
