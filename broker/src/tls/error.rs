//! Why the TLS certificate, key or client CA could not be loaded. Each message names the file,
//! for the operator's log (at startup the broker refuses to start; on SIGHUP it keeps the
//! previous certificates).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A setting the listeners need is missing (config validation normally catches it).
    #[error("{0} is required for the TLS listeners")]
    Missing(&'static str),
    #[error("{what} {path}: {source}")]
    Pem {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    #[error("client CA {path}: a certificate is not a usable trust anchor: {source}")]
    ClientCa {
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    /// Binding a TLS listener.
    #[error(transparent)]
    Listen(#[from] std::io::Error),
    /// Protocol versions, or a key that does not fit the certificate.
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}
