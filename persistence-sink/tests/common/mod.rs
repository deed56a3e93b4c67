//! The real services of `scripts/services.sh`: where they are, and what a test does when they
//! are not there (skip with a message — or fail, when STOMPBOX_REQUIRE_SERVICES=1 as
//! `scripts/test.sh` sets it, so CI can never pass by skipping).

#![allow(dead_code)]

pub mod private_postgres;
pub mod sink_process;
pub mod workload;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use chat_store::{PostgresConfig, PostgresStore};

/// Where the services are: the process environment first, else the env file that
/// `scripts/services.sh up` writes (.run/services.env at the workspace root, or
/// $STOMPBOX_SERVICES_ENV).
fn env_file() -> PathBuf {
    std::env::var_os("STOMPBOX_SERVICES_ENV").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.run/services.env"),
        PathBuf::from,
    )
}

fn from_file() -> HashMap<String, String> {
    std::fs::read_to_string(env_file())
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// The value of a service variable, or `None` (after saying why) when the service is not set
/// up and not required.
fn service(key: &str, test: &str) -> Option<String> {
    if let Some(value) = std::env::var(key).ok().or_else(|| from_file().remove(key)) {
        return Some(value);
    }
    let why = format!(
        "{test}: no {key} (env or {}); run `scripts/services.sh up`",
        env_file().display()
    );
    if std::env::var("STOMPBOX_REQUIRE_SERVICES").is_ok_and(|v| v == "1") {
        panic!("{why} (required: STOMPBOX_REQUIRE_SERVICES=1)");
    }
    eprintln!("SKIPPED {why}");
    None
}

/// The PostgreSQL URL (`postgres://…/postgres`, a superuser that may create schemas).
pub fn postgres_url(test: &str) -> Option<String> {
    service("STOMPBOX_POSTGRES_URL", test)
}

/// The same PostgreSQL over TLS: `postgres://…@localhost:…?sslmode=verify-full&sslrootcert=…`.
pub fn postgres_tls_url(test: &str) -> Option<String> {
    service("STOMPBOX_POSTGRES_TLS_URL", test)
}

/// The directory of the test PKI (`scripts/test-certs.sh`): ca.pem, other-ca.pem, client-*.pem.
pub fn test_certs(test: &str) -> Option<PathBuf> {
    service("STOMPBOX_TEST_CERTS", test).map(PathBuf::from)
}

/// The Kafka bootstrap servers (`host:port`).
pub fn kafka_brokers(test: &str) -> Option<String> {
    service("STOMPBOX_KAFKA_BROKERS", test)
}

/// Fresh events and dead-letter topics (created) of `partitions` partitions on `brokers`.
pub async fn fresh_topics(
    brokers: String,
    name: &str,
    partitions: i32,
) -> chat_store::kafka::KafkaConfig {
    let mut kafka = chat_store::kafka::KafkaConfig::new(brokers);
    kafka.events_topic = unique(name);
    kafka.dead_letter_topic = format!("{}.dlt", kafka.events_topic);
    kafka.partitions = partitions;
    chat_store::kafka::ensure_topics(&kafka)
        .await
        .expect("create the test topics");
    kafka
}

/// A name no other test (or earlier run) uses: pid, a counter, and the time.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A [`PostgresStore`] in a schema of its own (search_path), so every test starts from an
/// empty, freshly migrated database without the cost of a database. Schemas are named
/// `t_<pid>_…` and dropped by a later run once that process is gone (dropping in `Drop` would
/// block the runtime the store's connections run on).
pub struct SchemaStore {
    pub store: PostgresStore,
    pub schema: String,
    pub config: PostgresConfig,
}

impl std::ops::Deref for SchemaStore {
    type Target = dyn chat_store::ChatStore;

    fn deref(&self) -> &Self::Target {
        &self.store
    }
}

/// The config of a store in `schema` (created if missing), with background maintenance off so
/// tests drive partitions with a chosen clock.
pub async fn schema_config(postgres_url: &str, schema: &str) -> PostgresConfig {
    let (client, conn) = tokio_postgres::connect(postgres_url, tokio_postgres::NoTls)
        .await
        .expect("connect to the test PostgreSQL");
    let conn = tokio::spawn(conn);
    drop_schemas_of_gone_processes(&client).await;
    client
        .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
        .await
        .expect("create schema");
    drop(client);
    let _ = conn.await;
    let mut config: PostgresConfig = postgres_url.parse().expect("postgres url");
    config
        .connection
        .options(format!("-c search_path={schema}"));
    config.pool_size = 4;
    config.background_maintenance = false;
    config
}

/// Drops the test schemas (`t_<pid>_…`) of processes that no longer run.
async fn drop_schemas_of_gone_processes(client: &tokio_postgres::Client) {
    let Ok(rows) = client
        .query(
            "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 't\\_%'",
            &[],
        )
        .await
    else {
        return;
    };
    for row in rows {
        let name: String = row.get(0);
        let pid = name.split('_').nth(1).and_then(|p| p.parse::<u32>().ok());
        let gone = pid.is_some_and(|p| !std::path::Path::new(&format!("/proc/{p}")).exists());
        if gone {
            // Another test process may be dropping it at the same time: ignore its error.
            let _ = client
                .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                .await;
        }
    }
}

pub async fn schema_store(test: &str) -> Option<SchemaStore> {
    let url = postgres_url(test)?;
    let schema = unique("t");
    let config = schema_config(&url, &schema).await;
    let store = PostgresStore::connect(config.clone())
        .await
        .expect("connect PostgresStore");
    Some(SchemaStore {
        store,
        schema,
        config,
    })
}
