//! `--jwt-jwks-url`: keys fetched from a JWKS served here by a small HTTP server that counts
//! its requests. A token is verified with the key its `kid` names, and only with that key's
//! algorithm; a new key published at the server (rotation) is fetched when the first token
//! naming it arrives; tokens with made-up `kid`s do not turn into a flood of fetches (at most
//! one refetch per 30 s); the broker starts while the key server is down and picks the keys up
//! once it answers; over HTTPS, the key server's certificate must chain to `--jwt-jwks-ca`
//! (the test PKI of scripts/test-certs.sh) and is refused against the built-in web roots.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use conformance_tests::client::connect_frame;
use conformance_tests::{Broker, Command, Frame, FrameExt, TcpClient, WAIT};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A JWKS document served over HTTP/1.1 on loopback, replaceable while running.
struct KeyServer {
    addr: SocketAddr,
    document: Arc<Mutex<String>>,
    hits: Arc<AtomicUsize>,
}

impl KeyServer {
    async fn start(set: &JwkSet) -> KeyServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        Self::serve(listener, set)
    }

    fn serve(listener: TcpListener, set: &JwkSet) -> KeyServer {
        Self::serve_with(listener, set, None)
    }

    /// Serves over TLS when `tls` is given.
    fn serve_with(listener: TcpListener, set: &JwkSet, tls: Option<TlsAcceptor>) -> KeyServer {
        let addr = listener.local_addr().expect("bound");
        let document = Arc::new(Mutex::new(serde_json::to_string(set).expect("JSON")));
        let hits = Arc::new(AtomicUsize::new(0));
        let (doc, count) = (Arc::clone(&document), Arc::clone(&hits));
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (doc, count) = (Arc::clone(&doc), Arc::clone(&count));
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        None => answer(stream, &doc, &count).await,
                        Some(tls) => {
                            if let Ok(stream) = tls.accept(stream).await {
                                answer(stream, &doc, &count).await;
                            }
                        }
                    }
                });
            }
        });
        KeyServer {
            addr,
            document,
            hits,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/.well-known/jwks.json", self.addr)
    }

    fn publish(&self, set: &JwkSet) {
        *self.document.lock().expect("not poisoned") = serde_json::to_string(set).expect("JSON");
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    async fn wait_for_hits(&self, at_least: usize) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while self.hits() < at_least {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the broker fetched the JWKS {} times, expected {at_least}",
                self.hits()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Reads one request and answers it with the current document.
async fn answer<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    document: &Mutex<String>,
    hits: &AtomicUsize,
) {
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    hits.fetch_add(1, Ordering::SeqCst);
    let body = document.lock().expect("not poisoned").clone();
    // A long max-age: every fetch these tests see is one they caused.
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
         cache-control: public, max-age=3600\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// A signing key and its public JWK under `kid`.
struct SigningKey {
    alg: Algorithm,
    key: EncodingKey,
    kid: String,
}

impl SigningKey {
    fn load(alg: Algorithm, private_pem: &str, kid: &str) -> SigningKey {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../broker/tests/data")
            .join(private_pem);
        let pem = std::fs::read(path).expect("test key present");
        let key = match alg {
            Algorithm::ES256 => EncodingKey::from_ec_pem(&pem),
            Algorithm::EdDSA => EncodingKey::from_ed_pem(&pem),
            Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem),
            other => panic!("no PEM key for {other:?}"),
        }
        .expect("valid test key");
        SigningKey {
            alg,
            key,
            kid: kid.to_owned(),
        }
    }

    fn jwk(&self) -> Jwk {
        let mut jwk = Jwk::from_encoding_key(&self.key, self.alg).expect("public JWK");
        jwk.common.key_id = Some(self.kid.clone());
        jwk
    }

    /// A token for `sub` signed by this key, its header naming `kid` and `alg`.
    fn token_as(&self, sub: &str, kid: &str, alg: Algorithm) -> String {
        let mut header = Header::new(alg);
        header.kid = Some(kid.to_owned());
        let exp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs()
            + 3600;
        jsonwebtoken::encode(&header, &json!({"sub": sub, "exp": exp}), &self.key)
            .expect("JWT encodes")
    }

    fn token(&self, sub: &str) -> String {
        self.token_as(sub, &self.kid, self.alg)
    }
}

fn set(keys: &[&SigningKey]) -> JwkSet {
    JwkSet {
        keys: keys.iter().map(|k| k.jwk()).collect(),
    }
}

async fn attempt(broker: &Broker, token: &str) -> (TcpClient, Frame) {
    let mut client = TcpClient::open(broker.stomp_addr).await;
    let reply = client
        .handshake(connect_frame(
            Command::Connect,
            &[
                ("accept-version", "1.2"),
                ("host", "localhost"),
                ("passcode", token),
                ("heart-beat", "0,0"),
            ],
        ))
        .await;
    (client, reply)
}

async fn assert_accepted(broker: &Broker, token: &str, user: &str) {
    let (_client, reply) = attempt(broker, token).await;
    assert_eq!(reply.command, Command::Connected, "{}", reply.describe());
    assert_eq!(reply.value("user-name"), user);
}

async fn assert_refused(broker: &Broker, token: &str, why: &str) {
    let (mut client, reply) = attempt(broker, token).await;
    assert_eq!(reply.command, Command::Error, "{why}: {}", reply.describe());
    assert_eq!(reply.value("message"), "authentication failed", "{why}");
    client.expect_closed(WAIT).await;
}

#[tokio::test]
async fn kid_selects_the_key_rotation_is_fetched_and_unknown_kids_are_rate_limited() {
    let ec = SigningKey::load(Algorithm::ES256, "jwt-test-ec-private.pem", "ec-1");
    let ed = SigningKey::load(Algorithm::EdDSA, "jwt-test-ed25519-private.pem", "ed-1");
    let server = KeyServer::start(&set(&[&ec, &ed])).await;
    let broker = Broker::start(&["--jwt-jwks-url", &server.url()]);
    server.wait_for_hits(1).await;

    // Each kid selects its key, and only with that key's algorithm.
    assert_accepted(&broker, &ec.token("erin"), "erin").await;
    assert_accepted(&broker, &ed.token("eddie"), "eddie").await;
    let ed_as_ec = ed.token_as("eddie", "ec-1", Algorithm::EdDSA);
    assert_refused(&broker, &ed_as_ec, "EdDSA token naming the EC key").await;
    let ec_named_ed = ec.token_as("erin", "ed-1", Algorithm::ES256);
    assert_refused(&broker, &ec_named_ed, "ES256 token naming the Ed25519 key").await;
    assert_eq!(server.hits(), 1, "known kids are served from the cache");

    // Rotation: the issuer publishes a new key and signs with it at once.
    let rsa = SigningKey::load(Algorithm::RS256, "jwt-test-rsa-private.pem", "rsa-2");
    server.publish(&set(&[&ec, &ed, &rsa]));
    assert_accepted(&broker, &rsa.token("rosa"), "rosa").await;
    assert_eq!(server.hits(), 2, "one refetch for the new kid");

    // Made-up kids, many of them: refused, and at most the rate limit's worth of fetches
    // (none here: the rotation's refetch was less than 30 s ago).
    for n in 0..20 {
        let token = ec.token_as("mallory", &format!("random-{n}"), Algorithm::ES256);
        let (_client, reply) = attempt(&broker, &token).await;
        assert_eq!(reply.command, Command::Error, "{}", reply.describe());
    }
    assert_eq!(server.hits(), 2, "unknown kids did not become fetches");
    // Known keys still work meanwhile.
    assert_accepted(&broker, &ec.token("erin"), "erin").await;
}

#[tokio::test]
async fn broker_starts_while_the_key_server_is_down_and_fetches_once_it_is_up() {
    // Reserve a port, then close it: nothing listens there when the broker starts.
    let reserved = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = reserved.local_addr().expect("bound");
    drop(reserved);
    let url = format!("http://{addr}/jwks.json");
    let broker = Broker::start(&["--jwt-jwks-url", &url]);
    let ec = SigningKey::load(Algorithm::ES256, "jwt-test-ec-private.pem", "ec-1");
    assert_refused(&broker, &ec.token("erin"), "no keys yet").await;
    assert!(
        broker.log().contains("JWKS fetch failed"),
        "the failure is logged"
    );

    let listener = TcpListener::bind(addr)
        .await
        .expect("the port is free again");
    let server = KeyServer::serve(listener, &set(&[&ec]));
    // The background refresher retries with backoff (1 s, 2 s, 4 s, ...).
    server.wait_for_hits_within(Duration::from_secs(20)).await;
    assert_accepted(&broker, &ec.token("erin"), "erin").await;
}

impl KeyServer {
    async fn wait_for_hits_within(&self, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        while self.hits() == 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the broker did not retry within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Let the broker install what it fetched.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The test PKI (CA, and a server leaf for localhost), made by the project's script.
fn test_certs() -> PathBuf {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = workspace.join(".run/certs");
    let status = std::process::Command::new("bash")
        .arg(workspace.join("scripts/test-certs.sh"))
        .arg(&dir)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("scripts/test-certs.sh runs");
    assert!(status.success(), "scripts/test-certs.sh failed");
    dir
}

fn tls_acceptor(certs: &std::path::Path) -> TlsAcceptor {
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(certs.join("server.pem"))
            .expect("server.pem")
            .collect::<Result<_, _>>()
            .expect("PEM certificates");
    let key = PrivateKeyDer::from_pem_file(certs.join("server-key.pem")).expect("server key");
    #[allow(deprecated)] // ring, as in the broker
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("certificate and key match");
    TlsAcceptor::from(Arc::new(config))
}

#[tokio::test]
async fn jwks_over_https_is_trusted_through_the_configured_ca_only() {
    let certs = test_certs();
    let ec = SigningKey::load(Algorithm::ES256, "jwt-test-ec-private.pem", "ec-1");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let server = KeyServer::serve_with(listener, &set(&[&ec]), Some(tls_acceptor(&certs)));
    let url = format!("https://localhost:{}/jwks.json", server.addr.port());

    let ca = certs.join("ca.pem");
    let trusting = Broker::start(&[
        "--jwt-jwks-url",
        &url,
        "--jwt-jwks-ca",
        ca.to_str().expect("UTF-8 path"),
    ]);
    server.wait_for_hits(1).await;
    assert_accepted(&trusting, &ec.token("erin"), "erin").await;

    // The built-in web roots do not know the test CA: the handshake fails, no keys.
    let hits = server.hits();
    let doubting = Broker::start(&["--jwt-jwks-url", &url]);
    let deadline = tokio::time::Instant::now() + WAIT;
    while !doubting.log().contains("JWKS fetch failed") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no failed fetch logged:\n{}",
            doubting.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_refused(&doubting, &ec.token("erin"), "untrusted key server").await;
    assert_eq!(server.hits(), hits, "no request got past the TLS handshake");
}
