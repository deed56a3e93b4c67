//! TLS clients for the TLS listeners: the test PKI from `scripts/test-certs.sh`, a rustls
//! client that trusts its CA and may present a client certificate, and STOMP/WebSocket
//! clients over it.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::sync::{Arc, OnceLock};

use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::WAIT;
use crate::client::{TcpClient, connect_frame};
use crate::ws::WsClient;
use crate::{Command, Frame, FrameExt};

/// The directory of the test PKI, written once per test process by `scripts/test-certs.sh`
/// (its own directory, so parallel test binaries never see each other's half-written files).
pub fn certs() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("conformance-tests lives inside the workspace");
        let dir = std::env::temp_dir().join(format!("stompbox-test-certs-{}", std::process::id()));
        let output = Process::new(workspace.join("scripts/test-certs.sh"))
            .arg(&dir)
            .output()
            .expect("scripts/test-certs.sh runs (it needs openssl)");
        assert!(
            output.status.success(),
            "scripts/test-certs.sh failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        dir
    })
}

/// A file of the test PKI, as a flag value.
pub fn cert_file(name: &str) -> String {
    certs().join(name).to_str().expect("UTF-8 path").to_owned()
}

/// The certificates in a PEM file of the test PKI (or any path).
pub fn pem_certificates(path: &Path) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_file_iter(path)
        .expect("PEM file readable")
        .collect::<Result<_, _>>()
        .expect("PEM certificates")
}

/// A client that trusts the test CA and, given `client` ("alice", "bob", "mallory"),
/// presents `client-<name>.pem`.
pub fn client_config(client: Option<&str>) -> Arc<ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for ca in pem_certificates(&certs().join("ca.pem")) {
        roots.add(ca).expect("test CA is a trust anchor");
    }
    // Deprecated in rustls 0.23.48 for lacking post-quantum key exchange; the broker uses the
    // same ring provider, which is what these tests speak to.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some(name) => {
            let chain = pem_certificates(&certs().join(format!("client-{name}.pem")));
            let key = PrivateKeyDer::from_pem_file(certs().join(format!("client-{name}-key.pem")))
                .expect("client key");
            builder
                .with_client_auth_cert(chain, key)
                .expect("client certificate and key match")
        }
    };
    Arc::new(config)
}

/// A TLS connection to `addr`, verifying the server as `localhost`. With TLS 1.3 a client
/// certificate the server refuses shows only on the first read, not here.
pub async fn connect(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
) -> io::Result<TlsStream<TcpStream>> {
    let tcp = tokio::time::timeout(WAIT, TcpStream::connect(addr))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
    tcp.set_nodelay(true)?;
    let name = ServerName::try_from("localhost").expect("valid name");
    tokio::time::timeout(WAIT, TlsConnector::from(config).connect(name, tcp))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))?
}

/// The leaf certificate the server presented on `stream`.
pub fn server_leaf(stream: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .expect("the server presented a certificate")
        .clone()
        .into_owned()
}

/// A STOMP client over TLS that sent CONNECT with `headers` (accept-version 1.2 and host
/// added); returns it with the broker's answer.
pub async fn stomp_handshake(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    headers: &[(&str, &str)],
) -> (TcpClient, Frame) {
    let stream = connect(addr, config)
        .await
        .unwrap_or_else(|e| panic!("TLS connection to {addr}: {e}"));
    let mut client = TcpClient::from_io(stream);
    let mut all = vec![("accept-version", "1.2"), ("host", "localhost")];
    // No heart-beats unless the test asks (the first of repeated headers would win).
    if !headers.iter().any(|(name, _)| *name == "heart-beat") {
        all.push(("heart-beat", "0,0"));
    }
    all.extend_from_slice(headers);
    let reply = client
        .handshake(connect_frame(Command::Connect, &all))
        .await;
    (client, reply)
}

/// A STOMP client over TLS, connected (CONNECTED asserted) with `headers`.
pub async fn stomp_client(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    headers: &[(&str, &str)],
) -> TcpClient {
    let (client, reply) = stomp_handshake(addr, config, headers).await;
    assert_eq!(
        reply.command,
        Command::Connected,
        "CONNECT refused: {}",
        reply.describe()
    );
    client
}

/// A STOMP-over-WSS client at `wss://localhost:PORT/ws`, connected with `login`.
pub async fn wss_client(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    login: &str,
) -> WsClient<TlsStream<TcpStream>> {
    let stream = connect(addr, config)
        .await
        .unwrap_or_else(|e| panic!("TLS connection to {addr}: {e}"));
    let url = format!("wss://localhost:{}/ws", addr.port());
    WsClient::open_over(stream, &url, &["v12.stomp"])
        .await
        .unwrap_or_else(|e| panic!("WebSocket handshake with {url}: {e}"))
        .connect_as(login)
        .await
}
