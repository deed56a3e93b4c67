//! The state every session shares: configuration, router, credentials, authorization, ids,
//! and the chat application.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chat_store::{ChatStore, SqliteStore, StoreError};
use thiserror::Error;
use tokio_util::sync::CancellationToken;

use crate::acl::Acl;
use crate::auth::{AuthError, Authenticator};
use crate::chat::Chat;
use crate::cluster::Cluster;
use crate::config::{Config, KafkaSettings};
use crate::id::IdGenerator;
use crate::router::Router;

/// Why the broker could not start.
#[derive(Debug, Error)]
pub enum StartError {
    #[error("authentication setup: {0}")]
    Auth(#[from] AuthError),
    #[error("chat store: {0}")]
    Store(#[from] StoreError),
    #[error("cluster: {0}")]
    Cluster(#[from] crate::cluster::ClusterError),
    /// A configured store whose code this build left out (`--no-default-features`).
    #[error(
        "{setting} is set, but this stompbox was built without the `{feature}` cargo feature \
         (rebuild with default features or `--features {feature}`)"
    )]
    MissingFeature {
        setting: &'static str,
        feature: &'static str,
    },
}

#[derive(Debug)]
pub struct Broker {
    pub config: Config,
    pub router: Arc<Router>,
    pub auth: Authenticator,
    pub acl: Acl,
    pub ids: Arc<IdGenerator>,
    pub chat: Arc<Chat>,
    /// The chat store, kept to close it at shutdown (the streamed store flushes to Kafka).
    pub store: Arc<dyn ChatStore>,
    /// Cancelled when shutdown begins: listeners stop and handshakes are refused.
    pub stopping: CancellationToken,
    /// Cancelled once every session has ended: background tasks (chat) stop.
    pub done: CancellationToken,
    next_session: AtomicU64,
}

/// File name of the embedded chat store inside `--data-dir`.
const STORE_FILE: &str = "chat.sqlite3";

impl Broker {
    /// Opens the configured chat store (`config.storage`: embedded SQLite under `data_dir`
    /// by default), joins the cluster when `--redis-url` is set, and starts the chat
    /// application's tasks (so it must run inside the runtime).
    pub async fn open(mut config: Config) -> Result<Self, StartError> {
        let store = open_store(&config).await?;
        // Cluster mode: the node id may come from Redis, and ids need it before anything runs.
        let cluster = match &config.cluster {
            Some(c) => {
                let configured = (!c.claim_node_id).then_some(config.node_id);
                let cluster = Cluster::connect(
                    c,
                    configured,
                    config.chat.presence_ttl,
                    config.limits.queue_max_messages,
                )
                .await?;
                config.node_id = cluster.node_id();
                Some(cluster)
            }
            None => None,
        };
        Self::with_store(config, store, cluster)
    }

    pub fn with_store(
        config: Config,
        store: Arc<dyn ChatStore>,
        cluster: Option<Arc<Cluster>>,
    ) -> Result<Self, StartError> {
        let router = Arc::new(Router::new(
            config.limits.queue_max_messages,
            cluster.clone(),
        ));
        let ids = Arc::new(IdGenerator::new(config.node_id));
        let done = CancellationToken::new();
        let chat = Arc::new(Chat::start(
            Arc::clone(&store),
            Arc::clone(&router),
            Arc::clone(&ids),
            config.chat.clone(),
            done.clone(),
        ));
        if let Some(cluster) = &cluster {
            cluster.start(Arc::clone(&router), Arc::clone(chat.core()), done.clone());
        }
        Ok(Self {
            router,
            auth: Authenticator::from_config(&config.auth)?,
            acl: Acl::new(&config.acl),
            ids,
            chat,
            store,
            stopping: CancellationToken::new(),
            done,
            next_session: AtomicU64::new(1),
            config,
        })
    }

    pub fn next_session_id(&self) -> u64 {
        self.next_session.fetch_add(1, Ordering::Relaxed)
    }
}

/// Opens the store `config.storage` names. A store this build was compiled without (cargo
/// features `postgres`, `kafka`) fails the start, naming the feature, rather than being ignored.
async fn open_store(config: &Config) -> Result<Arc<dyn ChatStore>, StartError> {
    let storage = &config.storage;
    let Some(url) = &storage.postgres_url else {
        return Ok(Arc::new(SqliteStore::open(
            &config.data_dir.join(STORE_FILE),
        )?));
    };
    open_postgres(url, storage.kafka.as_ref()).await
}

/// PostgreSQL directly, or behind Kafka when `kafka` is set.
#[cfg(feature = "postgres")]
async fn open_postgres(
    url: &str,
    kafka: Option<&KafkaSettings>,
) -> Result<Arc<dyn ChatStore>, StartError> {
    use chat_store::{PostgresConfig, PostgresStore};

    let config = url.parse::<PostgresConfig>()?;
    let Some(kafka) = kafka else {
        let postgres = PostgresStore::connect(config).await?;
        tracing::info!("chat store: PostgreSQL");
        return Ok(Arc::new(postgres));
    };
    open_streamed(config, kafka).await
}

#[cfg(not(feature = "postgres"))]
async fn open_postgres(
    _url: &str,
    _kafka: Option<&KafkaSettings>,
) -> Result<Arc<dyn ChatStore>, StartError> {
    Err(StartError::MissingFeature {
        setting: "--postgres-url",
        feature: "postgres",
    })
}

#[cfg(feature = "kafka")]
async fn open_streamed(
    postgres: chat_store::PostgresConfig,
    settings: &KafkaSettings,
) -> Result<Arc<dyn ChatStore>, StartError> {
    use chat_store::{PostgresStore, StreamedStore};

    let postgres = PostgresStore::connect(postgres).await?;
    let KafkaSettings { kafka, max_pending } = settings;
    tracing::info!(brokers = %kafka.brokers, topic = %kafka.events_topic,
        "chat store: Kafka → sink → PostgreSQL");
    Ok(Arc::new(StreamedStore::start(
        postgres,
        kafka.clone(),
        *max_pending,
    )?))
}

#[cfg(all(feature = "postgres", not(feature = "kafka")))]
async fn open_streamed(
    _postgres: chat_store::PostgresConfig,
    _settings: &KafkaSettings,
) -> Result<Arc<dyn ChatStore>, StartError> {
    Err(StartError::MissingFeature {
        setting: "--kafka-brokers",
        feature: "kafka",
    })
}
