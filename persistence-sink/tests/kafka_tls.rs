//! Kafka over TLS, end to end: librdkafka's own TLS (`--kafka-option security.protocol=SSL`,
//! `ssl.ca.location`) against a Kafka-API broker reachable only through TLS.
//!
//! tansu has no TLS listener, so the test puts one in front of a private tansu: a TLS
//! terminator (rustls, the test PKI's server leaf for localhost) whose address tansu advertises
//! in its metadata, so every connection a client makes — bootstrap, then the partition
//! leaders — goes through TLS. The admin client (topics), the producer and the sink's consumer
//! all connect that way; PostgreSQL is reached over `sslmode=verify-full` as well.

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chat_store::kafka::{KafkaConfig, ensure_topics};
use common::sink_process::{SinkProcess, url_in_schema};
use common::workload::{Chat, PER_CONVERSATION, produce, stored};
use rdkafka::producer::{BaseProducer, Producer};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};

/// tansu is ready in milliseconds; a loaded machine is slower.
const READY: Duration = Duration::from_secs(20);
const CATCH_UP: Duration = Duration::from_secs(60);
const METADATA: Duration = Duration::from_secs(5);

/// A private tansu (memory storage) that advertises the TLS terminator's address.
struct Tansu(Child);

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tansu_bin() -> std::path::PathBuf {
    if let Some(bin) = std::env::var_os("STOMPBOX_TANSU_BIN") {
        return bin.into();
    }
    let home = std::env::var_os("CARGO_HOME").map_or_else(
        || std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cargo"),
        std::path::PathBuf::from,
    );
    let installed = home.join("bin/tansu");
    if installed.exists() {
        installed
    } else {
        "tansu".into()
    }
}

async fn start_tansu(advertised: u16) -> anyhow::Result<(Tansu, u16)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let child = Command::new(tansu_bin())
        .args([
            "broker",
            "--listener-url",
            &format!("tcp://127.0.0.1:{port}"),
        ])
        .args([
            "--advertised-listener-url",
            &format!("tcp://localhost:{advertised}"),
        ])
        .args(["--storage-engine", "memory://tansu/"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let tansu = Tansu(child);
    let deadline = Instant::now() + READY;
    while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        anyhow::ensure!(Instant::now() < deadline, "tansu did not listen on {port}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok((tansu, port))
}

/// Accepts TLS on `listener` and relays the plaintext to `upstream`; counts the handshakes
/// that completed.
fn terminate_tls(
    listener: TcpListener,
    upstream: u16,
    certs: &std::path::Path,
) -> anyhow::Result<Arc<AtomicUsize>> {
    let chain =
        CertificateDer::pem_file_iter(certs.join("server.pem"))?.collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(certs.join("server-key.pem"))?;
    #[allow(deprecated)] // ring: see chat-store's postgres::tls for why not aws-lc-rs.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let handshakes = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&handshakes);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let counted = Arc::clone(&counted);
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(socket).await else {
                    return;
                };
                counted.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut plain) = TcpStream::connect(("127.0.0.1", upstream)).await {
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                }
            });
        }
    });
    Ok(handshakes)
}

/// Whether a producer with `kafka`'s options gets the cluster's metadata.
async fn reaches(kafka: &KafkaConfig) -> bool {
    let Ok(producer) = kafka.client_config().create::<BaseProducer>() else {
        return false;
    };
    tokio::task::spawn_blocking(move || producer.client().fetch_metadata(None, METADATA).is_ok())
        .await
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread")]
async fn producer_admin_and_sink_speak_tls_to_kafka() -> anyhow::Result<()> {
    let (Some(tls_url), Some(certs)) = (
        common::postgres_tls_url("Kafka over TLS"),
        common::test_certs("Kafka over TLS"),
    ) else {
        return Ok(());
    };
    let Some(fixture) = common::schema_store("Kafka over TLS").await else {
        return Ok(());
    };
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let tls_port = listener.local_addr()?.port();
    let (_tansu, tansu_port) = start_tansu(tls_port).await?;
    let handshakes = terminate_tls(listener, tansu_port, &certs)?;

    let ca = certs.join("ca.pem").display().to_string();
    let tls_options = [
        ("security.protocol", "SSL"),
        ("ssl.ca.location", ca.as_str()),
    ];
    let mut kafka = KafkaConfig::new(format!("localhost:{tls_port}"));
    kafka.events_topic = common::unique("tls");
    kafka.dead_letter_topic = format!("{}.dlt", kafka.events_topic);
    kafka.partitions = 2;

    // Plain Kafka protocol to the TLS port, and TLS with the wrong CA: no metadata.
    assert!(
        !reaches(&kafka).await,
        "a plaintext client got through the TLS port"
    );
    let other_ca = certs.join("other-ca.pem").display().to_string();
    kafka.options = vec![
        ("security.protocol".into(), "SSL".into()),
        ("ssl.ca.location".into(), other_ca),
    ];
    assert!(
        !reaches(&kafka).await,
        "a client trusting another CA got through"
    );
    kafka.options = tls_options
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
    assert!(
        reaches(&kafka).await,
        "the client with the right CA got no metadata"
    );

    ensure_topics(&kafka).await?;
    let chat = Chat::new(2);
    chat.create(&*fixture).await;
    produce(&kafka, &chat.events(0, PER_CONVERSATION)).await?;

    let dir = tempfile::tempdir()?;
    let log = dir.path().join("sink.log");
    let url = url_in_schema(&tls_url, &fixture.schema);
    let flags: Vec<String> = tls_options
        .iter()
        .flat_map(|(k, v)| ["--kafka-option".to_owned(), format!("{k}={v}")])
        .collect();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let group = common::unique("tls-group");
    let mut sink = SinkProcess::start(&kafka, &url, &group, &log, &flags)?;
    let client = fixture.store.client().await?;
    let expected = chat.expected();
    let deadline = Instant::now() + CATCH_UP;
    while stored(&client).await?.0 != expected {
        anyhow::ensure!(
            Instant::now() < deadline,
            "sink did not catch up:\n{}",
            sink.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sink.stop_gracefully()?;
    assert!(
        handshakes.load(Ordering::Relaxed) >= 3,
        "admin, producer and sink each shook hands"
    );
    Ok(())
}
