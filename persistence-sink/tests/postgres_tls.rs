//! TLS to PostgreSQL as libpq's `sslmode` says, against the real server of
//! `scripts/services.sh` (ssl=on, the test PKI's leaf for localhost/127.0.0.1) and a private
//! one with TLS off: what connects, what is refused and with which message, and that the
//! connections that succeed are encrypted (the server's own `pg_stat_ssl`).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use chat_store::{PostgresConfig, PostgresStore, StoreError};
use common::private_postgres::PrivatePostgres;
use common::sink_process::{SinkProcess, url_in_schema};
use common::workload::{Chat, produce, stored};

/// Bound on the sink moving a few hundred records on a machine shared with builds.
const CATCH_UP: Duration = Duration::from_secs(60);

/// `url` with its query replaced by `query` (the services' TLS URL has one).
fn with_query(url: &str, query: &str) -> String {
    let base = url.split_once('?').map_or(url, |(base, _)| base);
    format!("{base}?{query}")
}

fn pem(certs: &Path, name: &str) -> String {
    certs.join(name).display().to_string()
}

/// Connects once with `url`'s TLS settings; the session's `pg_stat_ssl.ssl`.
async fn connect(url: &str) -> Result<bool, String> {
    let config: PostgresConfig = url.parse().map_err(|e: StoreError| e.to_string())?;
    let (client, connection) = config
        .connection
        .connect(config.tls.clone())
        .await
        .map_err(|e| {
            format!(
                "{e}: {}",
                std::error::Error::source(&e).map_or(String::new(), |s| s.to_string())
            )
        })?;
    let connection = tokio::spawn(connection);
    let ssl: bool = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .map_err(|e| e.to_string())?
        .get(0);
    drop(client);
    let _ = connection.await;
    Ok(ssl)
}

async fn refused(url: &str) -> String {
    match connect(url).await {
        Ok(ssl) => panic!("{url} connected (ssl={ssl}), expected a refusal"),
        Err(e) => {
            println!("refused as expected: {url}: {e}");
            e
        }
    }
}

#[tokio::test]
async fn the_store_works_over_verify_full_and_its_connections_are_encrypted() -> anyhow::Result<()>
{
    let (Some(plain), Some(tls)) = (
        common::postgres_url("store over TLS"),
        common::postgres_tls_url("store over TLS"),
    ) else {
        return Ok(());
    };
    let schema = common::unique("t");
    // The schema through the plain URL (the helper's own connection), the store through TLS.
    let mut config = common::schema_config(&plain, &schema).await;
    let tls_config: PostgresConfig = tls.parse()?;
    config.connection = tls_config.connection;
    config
        .connection
        .options(format!("-c search_path={schema}"));
    config.tls = tls_config.tls;
    let store = PostgresStore::connect(config).await?;
    let chat = Chat::new(1);
    chat.create(&store).await;
    let client = store.client().await?;
    let ssl: bool = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await?
        .get(0);
    assert!(ssl, "a pooled connection of the store is not encrypted");
    assert_eq!(
        chat_store::ChatStore::conversations_of(&store, "bob")
            .await?
            .len(),
        1
    );
    Ok(())
}

#[tokio::test]
async fn each_sslmode_checks_what_libpq_checks() {
    let (Some(tls), Some(certs)) = (
        common::postgres_tls_url("sslmode semantics"),
        common::test_certs("sslmode semantics"),
    ) else {
        return;
    };
    let ca = pem(&certs, "ca.pem");
    let other_ca = pem(&certs, "other-ca.pem");
    // Host `wrong.test` for the certificate check, connected at 127.0.0.1 (libpq's hostaddr).
    let port = tls
        .rsplit_once(':')
        .and_then(|(_, rest)| rest.split('/').next())
        .expect("port");
    let wrong_name = format!("postgres://stompbox@wrong.test:{port}/postgres");

    assert_eq!(
        connect(&tls).await,
        Ok(true),
        "verify-full with the right CA and name"
    );
    let e = refused(&with_query(
        &tls,
        &format!("sslmode=verify-full&sslrootcert={other_ca}"),
    ))
    .await;
    assert!(e.contains("UnknownIssuer"), "wrong CA: {e}");
    let e = refused(&format!(
        "{wrong_name}?hostaddr=127.0.0.1&sslmode=verify-full&sslrootcert={ca}"
    ))
    .await;
    assert!(e.contains("not valid for name"), "wrong host name: {e}");
    // verify-ca: the chain, not the name.
    assert_eq!(
        connect(&format!(
            "{wrong_name}?hostaddr=127.0.0.1&sslmode=verify-ca&sslrootcert={ca}"
        ))
        .await,
        Ok(true)
    );
    let e = refused(&with_query(
        &tls,
        &format!("sslmode=verify-ca&sslrootcert={other_ca}"),
    ))
    .await;
    assert!(e.contains("UnknownIssuer"), "verify-ca, wrong CA: {e}");
    // require: encrypted, no check without a root certificate; with one, the chain (libpq).
    assert_eq!(
        connect(&with_query(&tls, "sslmode=require")).await,
        Ok(true)
    );
    let e = refused(&with_query(
        &tls,
        &format!("sslmode=require&sslrootcert={other_ca}"),
    ))
    .await;
    assert!(
        e.contains("UnknownIssuer"),
        "require with a root certificate: {e}"
    );
    // prefer (the default) takes TLS when offered; disable does not.
    assert_eq!(connect(&with_query(&tls, "")).await, Ok(true));
    assert_eq!(
        connect(&with_query(&tls, "sslmode=disable")).await,
        Ok(false)
    );
    // Refused before connecting: verification without a CA, a file without a certificate.
    let e = refused(&with_query(&tls, "sslmode=verify-full")).await;
    assert!(e.contains("sslrootcert"), "verify-full without a CA: {e}");
    let e = refused(&with_query(
        &tls,
        &format!(
            "sslmode=verify-full&sslrootcert={}",
            pem(&certs, "ca-key.pem")
        ),
    ))
    .await;
    assert!(e.contains("no PEM certificate"), "a key as CA: {e}");
}

#[tokio::test]
async fn a_client_certificate_logs_in_where_the_server_demands_one() {
    let (Some(plain), Some(tls), Some(certs)) = (
        common::postgres_url("client certificate"),
        common::postgres_tls_url("client certificate"),
        common::test_certs("client certificate"),
    ) else {
        return;
    };
    // scripts/services.sh lets `alice` in over TLS with the certificate CN=alice only.
    let (client, connection) = tokio_postgres::connect(&plain, tokio_postgres::NoTls)
        .await
        .expect("plain connection");
    let connection = tokio::spawn(connection);
    client
        .batch_execute(
            "DO $$ BEGIN CREATE ROLE alice LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$",
        )
        .await
        .expect("role alice");
    drop(client);
    let _ = connection.await;
    let alice = tls.replacen("stompbox@", "alice@", 1);
    let e = refused(&alice).await;
    assert!(
        e.contains("certificate"),
        "alice without a certificate: {e}"
    );
    let with_cert = format!(
        "{alice}&sslcert={}&sslkey={}",
        pem(&certs, "client-alice.pem"),
        pem(&certs, "client-alice-key.pem")
    );
    assert_eq!(connect(&with_cert).await, Ok(true));
    // bob's certificate is valid, but not alice's.
    let as_bob = format!(
        "{alice}&sslcert={}&sslkey={}",
        pem(&certs, "client-bob.pem"),
        pem(&certs, "client-bob-key.pem")
    );
    let e = refused(&as_bob).await;
    assert!(
        e.contains("certificate authentication failed"),
        "bob's certificate as alice: {e}"
    );
}

#[tokio::test]
async fn require_is_refused_by_a_server_without_tls_and_prefer_falls_back() -> anyhow::Result<()> {
    // A private server with the default ssl=off.
    let Some(server) = PrivatePostgres::init("sslmode=require without TLS")? else {
        return Ok(());
    };
    let e = refused(&format!("{}?sslmode=require", server.url())).await;
    assert!(e.contains("server does not support TLS"), "{e}");
    assert_eq!(
        connect(&format!("{}?sslmode=prefer", server.url())).await,
        Ok(false)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sink_writes_over_tls_and_takes_kafka_options() -> anyhow::Result<()> {
    let (Some(brokers), Some(tls)) = (
        common::kafka_brokers("sink over TLS"),
        common::postgres_tls_url("sink over TLS"),
    ) else {
        return Ok(());
    };
    let Some(fixture) = common::schema_store("sink over TLS").await else {
        return Ok(());
    };
    let kafka = common::fresh_topics(brokers, "tls", 1).await;
    let chat = Chat::new(2);
    chat.create(&*fixture).await;
    produce(&kafka, &chat.events(0, common::workload::PER_CONVERSATION)).await?;
    let dir = tempfile::tempdir()?;
    let log = dir.path().join("sink.log");
    let application = common::unique("sink_tls");
    let url = format!(
        "{}&application_name={application}",
        url_in_schema(&tls, &fixture.schema)
    );
    let group = common::unique("tls-group");

    // A server certificate that does not verify ends the start (no retrying), saying why.
    let wrong_ca = url.replace("/ca.pem", "/other-ca.pem");
    let bad = SinkProcess::start(&kafka, &wrong_ca, &group, &log, &[]);
    let e = bad.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        e.contains("invalid peer certificate: UnknownIssuer"),
        "wrong CA: {e}"
    );

    // A property librdkafka does not know fails the start, with librdkafka's message.
    let bad = SinkProcess::start(
        &kafka,
        &url,
        &group,
        &log,
        &["--kafka-option", "no.such.property=1"],
    );
    let e = bad.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        e.contains("No such configuration property"),
        "bad --kafka-option: {e}"
    );

    let mut sink = SinkProcess::start(
        &kafka,
        &url,
        &group,
        &log,
        &["--kafka-option", "client.id=stompbox-sink-tls-test"],
    )?;
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
    // Every connection the sink holds is encrypted.
    let row = client
        .query_one(
            "SELECT count(*), coalesce(bool_and(s.ssl), false) FROM pg_stat_activity a \
             JOIN pg_stat_ssl s USING (pid) WHERE a.application_name = $1",
            &[&application],
        )
        .await?;
    let (connections, all_tls): (i64, bool) = (row.get(0), row.get(1));
    assert!(
        connections > 0 && all_tls,
        "{connections} sink connections, all TLS: {all_tls}"
    );
    sink.stop_gracefully()
}
