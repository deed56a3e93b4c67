//! TLS to PostgreSQL: libpq's `sslmode` (`disable`, `prefer`, `require`, `verify-ca`,
//! `verify-full`) with `sslrootcert`, `sslcert` and `sslkey`, on rustls with the ring provider
//! named explicitly (never a process-wide default).
//!
//! tokio-postgres itself parses only `disable`/`prefer`/`require` and no certificate files, so
//! [`conninfo::split`] takes these keys out of the connection string before tokio-postgres
//! reads the rest, and [`PostgresTls`] (its `MakeTlsConnect`) verifies what libpq would:
//! - `prefer` (the default) and `require`: encrypted, the certificate not checked (protects
//!   against a passive eavesdropper only) — unless `sslrootcert` is given, when `require`
//!   checks the chain as `verify-ca` does (libpq's rule);
//! - `verify-ca`: the chain must lead to `sslrootcert`; any host name;
//! - `verify-full`: the chain, and the certificate must name the host connected to.

mod conninfo;
mod stream;
mod verify;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::error::invalid;
use crate::StoreError;

pub(crate) use conninfo::split;

/// libpq's `sslmode`, all five values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    Disable,
    /// TLS when the server offers it, else plain; the certificate is not checked.
    #[default]
    Prefer,
    /// TLS or no connection; the certificate is not checked (without `sslrootcert`).
    Require,
    /// TLS, the certificate's chain checked against `sslrootcert`; the host name is not.
    VerifyCa,
    /// TLS, the chain checked and the certificate must name the host.
    VerifyFull,
}

impl FromStr for SslMode {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            // libpq's `allow` (plain first, TLS if refused) is the one mode left out: it
            // would mean reconnecting after a refusal, for a mode nobody should choose.
            other => {
                return Err(invalid(format!(
                    "sslmode={other}: expected disable, prefer, require, verify-ca or verify-full"
                )));
            }
        })
    }
}

impl From<SslMode> for tokio_postgres::config::SslMode {
    fn from(mode: SslMode) -> Self {
        use tokio_postgres::config::SslMode as Wire;
        match mode {
            SslMode::Disable => Wire::Disable,
            SslMode::Prefer => Wire::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => Wire::Require,
        }
    }
}

/// The TLS keys of a connection string, as written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    pub mode: SslMode,
    /// PEM file of the CA(s) the server's certificate must lead to.
    pub root_cert: Option<PathBuf>,
    /// PEM client certificate chain and its key, for servers that authenticate by certificate.
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
}

/// The connector the pool connects with: the options and the rustls configuration they made
/// (none with `sslmode=disable`). Certificate files are read once, when it is built, so a
/// missing or malformed file fails the start rather than every connection.
#[derive(Clone)]
pub struct PostgresTls {
    options: TlsOptions,
    config: Option<Arc<ClientConfig>>,
}

impl std::fmt::Debug for PostgresTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresTls")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl PostgresTls {
    pub fn options(&self) -> &TlsOptions {
        &self.options
    }
}

impl TryFrom<TlsOptions> for PostgresTls {
    type Error = StoreError;

    fn try_from(options: TlsOptions) -> Result<Self, Self::Error> {
        if options.client_cert.is_some() != options.client_key.is_some() {
            return Err(invalid("sslcert and sslkey go together"));
        }
        let config = match options.mode {
            SslMode::Disable => None,
            _ => Some(Arc::new(client_config(&options)?)),
        };
        Ok(PostgresTls { options, config })
    }
}

/// ring, named rather than taken from the process default. rustls 0.23.48 deprecates ring's
/// provider for lacking post-quantum key exchange, which only aws-lc-rs offers — and aws-lc-rs
/// needs cmake to build. ring still negotiates classical ECDHE (X25519, P-256) with any
/// server.
#[allow(deprecated)]
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The rustls client configuration `options` ask for.
fn client_config(options: &TlsOptions) -> Result<ClientConfig, StoreError> {
    let provider = provider();
    let verifier: Arc<dyn rustls::client::danger::ServerCertVerifier> =
        match (options.mode, &options.root_cert) {
            (SslMode::VerifyCa | SslMode::VerifyFull, None) => {
                return Err(invalid(
                    "sslmode=verify-ca and verify-full need sslrootcert=FILE (the PEM of the CA \
                     that signed the server's certificate)",
                ));
            }
            (SslMode::Disable | SslMode::Prefer | SslMode::Require, None) => {
                Arc::new(verify::AnyCertificate::new(Arc::clone(&provider)))
            }
            (mode, Some(root_cert)) => {
                let roots = Arc::new(root_store(root_cert)?);
                let webpki =
                    WebPkiServerVerifier::builder_with_provider(roots, Arc::clone(&provider))
                        .build()
                        .map_err(|e| invalid(format!("sslrootcert: {e}")))?;
                if mode == SslMode::VerifyFull {
                    webpki
                } else {
                    Arc::new(verify::ChainOnly::new(webpki))
                }
            }
        };
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(format!("TLS versions: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    match (&options.client_cert, &options.client_key) {
        (Some(cert), Some(key)) => {
            let chain = certificates(cert, "sslcert")?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| invalid(format!("sslkey {}: {e}", key.display())))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| invalid(format!("sslcert/sslkey: {e}")))
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}

/// Every certificate of a PEM file; none is an error (an empty trust store trusts nothing, and
/// would fail every connection with a less clear message).
fn certificates(path: &Path, key: &str) -> Result<Vec<CertificateDer<'static>>, StoreError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| invalid(format!("{key} {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(invalid(format!(
            "{key} {}: no PEM certificate in it",
            path.display()
        )));
    }
    Ok(certs)
}

fn root_store(path: &Path) -> Result<RootCertStore, StoreError> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(path, "sslrootcert")? {
        roots
            .add(cert)
            .map_err(|e| invalid(format!("sslrootcert {}: {e}", path.display())))?;
    }
    Ok(roots)
}
