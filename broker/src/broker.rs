//! The state every session shares: configuration, router, credentials, authorization (both
//! replaceable by a reload), ids,
//! and the application on the STOMP core (the chat); and the wiring: the one place (with
//! `lib.rs`) that knows the cluster, connecting it to the router's and the chat's seams, or
//! their single-node stand-ins.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use chat_store::{ChatStore, SharedClaims, SqliteStore, StoreError};
use stompbox_push::Providers;
use thiserror::Error;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::warn;

use crate::acl::Acl;
use crate::app::Application;
use crate::auth::{AuthError, Authenticator, LoginThrottle, ThrottlePolicy};
use crate::chat::peers::{self as chat_peers, Backends, ChatPeers};
use crate::chat::presence::{Local, PresenceBackend};
use crate::chat::{Chat, Devices};
use crate::chore;
use crate::cluster::{Cluster, HealthSnapshot};
use crate::config::{Config, HistoryRule, KafkaSettings};
use crate::id::IdGenerator;
use crate::metrics::store::MeteredStore;
use crate::moment::Clock;
use crate::push::Push;
use crate::push::window::{LocalWindows, Windows};
use crate::rate::TokenBuckets;
use crate::readiness::{Readiness, ReadyReport};
use crate::router::history::History;
use crate::router::{self, Peers, Router};
use crate::wakeup::Wakeups;

/// Longest shutdown waits for background tasks (chat sequencer, presence, cluster tasks) once
/// `done` is cancelled: each stops at its next step, but one may be in a store or Redis call.
const TASKS_TIMEOUT: Duration = Duration::from_secs(3);

/// Most idle send-rate buckets one eviction looks at: a sweep never stalls the runtime.
const EVICT_MAX: usize = 4096;

/// Why the broker could not start.
#[derive(Debug, Error)]
pub enum StartError {
    #[error("authentication setup: {0}")]
    Auth(#[from] AuthError),
    #[error("chat store: {0}")]
    Store(#[from] StoreError),
    #[error("cluster: {0}")]
    Cluster(#[from] crate::cluster::ClusterError),
    #[error("push notifications: {0}")]
    Push(#[from] stompbox_push::PushError),
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
    /// Slots for credential checks running at once (`--max-auth-checks`).
    pub auth_checks: Arc<Semaphore>,
    /// Failed-login counts per user and per address (`--login-failures-per-user`, ...).
    pub login_throttle: LoginThrottle,
    /// The `[[acl]]` rules; replaced whole by a reload (`crate::reload`).
    pub acl: ArcSwap<Acl>,
    pub ids: Arc<IdGenerator>,
    /// Per-user buckets of plain SENDs (`--send-rate`): a user past the rate is slowed.
    pub send_rate: Arc<TokenBuckets>,
    /// What `/app/...` destinations reach, and what hears of sessions' lives: the chat. `None`
    /// leaves a plain STOMP broker.
    pub app: Option<Arc<dyn Application>>,
    /// The chat store, kept to close it at shutdown (the streamed store flushes to Kafka).
    pub store: Arc<dyn ChatStore>,
    /// Cancelled when shutdown begins: listeners stop and handshakes are refused.
    pub stopping: CancellationToken,
    /// Cancelled once every session has ended: background tasks (chat) stop.
    pub done: CancellationToken,
    /// Whether this node should be given clients (`/health/ready`), and the drain trigger.
    pub readiness: Arc<Readiness>,
    /// Background tasks (chat sequencer and presence, cluster tasks), joined at shutdown.
    tasks: TaskTracker,
    /// This node's membership in a cluster (`--redis-url`).
    cluster: Option<Arc<Cluster>>,
    /// What sessions keep their times as moments of (`moment`).
    pub clock: Clock,
    /// Every session's next deadline, fired by one timer task (`wakeup`).
    pub wakeups: Arc<Wakeups>,
    /// Every session, parked ones included (they hold a token, not a task): shutdown waits
    /// for them, as for the listeners' other tasks (refusals, TLS handshakes).
    pub sessions: TaskTracker,
    /// The runtime the broker was opened on: where a parked session resumes when a wake-up
    /// comes from a thread outside it (`session::park`).
    pub runtime: tokio::runtime::Handle,
    next_session: AtomicU64,
}

/// File name of the embedded chat store inside `--data-dir`.
const STORE_FILE: &str = "chat.sqlite3";

impl Broker {
    /// Opens the configured chat store (`config.storage`: embedded SQLite under `data_dir`
    /// by default), joins the cluster when `--redis-url` is set, and starts the chat
    /// application's tasks (so it must run inside the runtime).
    pub async fn open(mut config: Config) -> Result<Self, StartError> {
        if config.cluster.is_some() && config.storage.postgres_url.is_none() {
            // Allowed (nodes on one host may share one SQLite file, as the cluster tests do),
            // but never silently: on separate data directories every node has its own history
            // and its own clientMessageId dedup.
            warn!(
                data_dir = %config.data_dir.display(),
                "cluster mode on the embedded store: unless every node shares this data \
                 directory on one host, each node keeps its own chat history and retry \
                 deduplication; a cluster needs --postgres-url"
            );
        }
        // Cluster mode: the node id may come from Redis, and ids need it before anything runs.
        let cluster = match &config.cluster {
            Some(c) => {
                let configured = (!c.claim_node_id).then_some(config.node_id);
                let cluster = Cluster::connect(
                    c,
                    configured,
                    config.chat.presence_ttl,
                    config.limits.queue_max_messages,
                    config.limits.queue_idle_expiry,
                )
                .await?;
                config.node_id = cluster.node_id();
                Some(cluster)
            }
            None => None,
        };
        // After the cluster: a streamed store takes client ids through its claims.
        let claims = cluster.as_ref().map(|c| c.client_id_claims());
        let store = open_store(&config, claims).await?;
        let broker = Self::with_store(config, store, cluster)?;
        // Ready from the first request on when the store is: no "not probed yet" window.
        broker.readiness.probe(&*broker.store).await;
        Ok(broker)
    }

    pub fn with_store(
        config: Config,
        store: Arc<dyn ChatStore>,
        cluster: Option<Arc<Cluster>>,
    ) -> Result<Self, StartError> {
        let providers = match config.push.enabled() {
            true => Providers::from_settings(&config.push.provider_settings())?,
            false => Providers::default(),
        };
        let devices = Devices {
            providers: providers.clone(),
            limit: config.push.push_device_limit,
        };
        let (peers, backends): (Arc<dyn Peers>, Backends) = match &cluster {
            Some(cluster) => {
                let chat: Arc<dyn ChatPeers> = Arc::clone(cluster) as _;
                let presence: Arc<dyn PresenceBackend> = Arc::clone(cluster.presence()) as _;
                let backends = Backends {
                    peers: chat,
                    presence,
                    devices,
                };
                (Arc::clone(cluster) as _, backends)
            }
            None => {
                let backends = Backends {
                    peers: Arc::new(chat_peers::Alone),
                    presence: Arc::new(Local::new(config.chat.presence_ttl)),
                    devices,
                };
                (Arc::new(router::Alone), backends)
            }
        };
        // A cluster's topic histories are in Redis, shared by every node: an offset means
        // the same message on each (docs/protocol.md, "Resumable topics").
        let rules = config.limits.topic_history.clone();
        let history = match &cluster {
            Some(cluster) => History::shared(rules, Arc::clone(cluster) as _),
            None => History::new(rules).with_max_bytes(config.limits.topic_history_max_bytes),
        };
        let router = Arc::new(Router::new((&config.limits).into(), peers).with_history(history));
        let ids = Arc::new(IdGenerator::new(config.node_id));
        let done = CancellationToken::new();
        let tasks = TaskTracker::new();
        let chat = Chat::start(
            Arc::clone(&store),
            Arc::clone(&router),
            Arc::clone(&ids),
            config.chat.clone(),
            backends,
            &tasks,
            done.clone(),
        );
        if config.push.enabled() {
            // Windows shared through Redis in a cluster: one notification whichever nodes
            // stored the messages.
            let windows: Arc<dyn Windows> = match &cluster {
                Some(cluster) => Arc::new(cluster.push_windows()),
                None => Arc::new(LocalWindows::default()),
            };
            Push::start(
                config.push.clone(),
                providers,
                &chat,
                windows,
                &tasks,
                done.clone(),
            );
        }
        spawn_queue_expiry(
            &router,
            config.limits.queue_idle_expiry,
            &tasks,
            done.clone(),
        );
        spawn_history_expiry(&router, &config.limits.topic_history, &tasks, done.clone());
        let send_rate = Arc::new(TokenBuckets::new(
            config.limits.send_rate,
            config.limits.send_burst,
        ));
        {
            // Idle users' buckets, a bounded number a second (as the chat's evictor).
            let buckets = Arc::clone(&send_rate);
            chore::spawn_every(&tasks, done.clone(), Duration::from_secs(1), move |now| {
                buckets.sweep(now, EVICT_MAX);
            });
        }
        if let Some(cluster) = &cluster {
            let core = Arc::clone(chat.core());
            let conversations = Box::new(move |conversation| {
                core.remember(conversation);
            });
            cluster.start(Arc::clone(&router), conversations, &tasks, done.clone());
        }
        let auth = Authenticator::from_config(&config.auth)?;
        auth.start(&tasks, done.clone());
        let readiness = Arc::new(Readiness::default());
        readiness.spawn_probe(Arc::clone(&store), &tasks, done.clone());
        let clock = Clock::new();
        let wakeups = Arc::new(Wakeups::new(clock));
        {
            let wakeups = Arc::clone(&wakeups);
            let done = done.clone();
            tasks.spawn(async move { wakeups.run(done).await });
        }
        Ok(Self {
            router,
            auth,
            auth_checks: Arc::new(Semaphore::new(config.limits.max_auth_checks)),
            login_throttle: LoginThrottle::new(ThrottlePolicy::from(&config.admission)),
            acl: ArcSwap::from_pointee(Acl::new(&config.acl)),
            ids,
            send_rate,
            app: Some(Arc::new(chat)),
            store,
            stopping: CancellationToken::new(),
            done,
            readiness,
            tasks,
            cluster,
            clock,
            wakeups,
            sessions: TaskTracker::new(),
            runtime: tokio::runtime::Handle::current(),
            next_session: AtomicU64::new(1),
            config,
        })
    }

    pub fn next_session_id(&self) -> u64 {
        self.next_session.fetch_add(1, Ordering::Relaxed)
    }

    /// The Redis link's state, in cluster mode (for `/health`).
    pub fn cluster_health(&self) -> Option<HealthSnapshot> {
        self.cluster.as_ref().map(|c| c.health())
    }

    /// What `/health/ready` answers: the store's last probe, the Redis link in cluster
    /// mode, draining.
    pub fn ready_report(&self) -> ReadyReport {
        let redis = self.cluster.as_ref().map(|c| c.health().redis_connected);
        self.readiness.report(redis)
    }

    /// Whether `/health/ready` answers 200 now (for a readiness gauge).
    pub fn is_ready(&self) -> bool {
        self.ready_report().ready
    }

    /// After `done` was cancelled: lets the cluster finish its last acts (final publishes, the
    /// lease's release), waits, bounded, for every background task to end, then closes the
    /// store (nothing can write to it any more).
    pub async fn stopped(&self) {
        if let Some(cluster) = &self.cluster {
            cluster.stopped().await;
        }
        self.tasks.close();
        if tokio::time::timeout(TASKS_TIMEOUT, self.tasks.wait())
            .await
            .is_err()
        {
            warn!(
                remaining = self.tasks.len(),
                "shutdown timeout: abandoning background tasks"
            );
        }
        // Then the store's last writes: the streamed store's records still queued for Kafka.
        if let Err(e) = self.store.close().await {
            warn!(error = %e, "closing the chat store");
        }
    }
}

/// Removes idle empty queues every half expiry (at least every 30 s, at most every 100 ms),
/// so a queue goes between one and one and a half expiries after its last use.
fn spawn_queue_expiry(
    router: &Arc<Router>,
    expiry: Duration,
    tasks: &TaskTracker,
    done: CancellationToken,
) {
    if expiry.is_zero() {
        return;
    }
    let every = (expiry / 2).clamp(Duration::from_millis(100), Duration::from_secs(30));
    let router = Arc::clone(router);
    chore::spawn_every(tasks, done, every, move |now| {
        let expired = router.expire_queues(now);
        if expired > 0 {
            tracing::debug!(expired, "idle empty queues removed");
        }
    });
}

/// Drops topic histories whose messages all aged out, checking at half the shortest age
/// bound (between 1 s and 1 min): an idle topic's history does not hold memory for good.
fn spawn_history_expiry(
    router: &Arc<Router>,
    rules: &[HistoryRule],
    tasks: &TaskTracker,
    done: CancellationToken,
) {
    let Some(shortest) = rules.iter().map(|r| r.max_age).min() else {
        return;
    };
    let every = (shortest / 2).clamp(Duration::from_secs(1), Duration::from_secs(60));
    let router = Arc::clone(router);
    chore::spawn_every(tasks, done, every, move |now| {
        let expired = router.history().expire(now.into_std());
        if expired > 0 {
            tracing::debug!(expired, "idle topic histories dropped");
        }
    });
}

/// Opens the store `config.storage` names. A store this build was compiled without (cargo
/// features `postgres`, `kafka`) fails the start, naming the feature, rather than being ignored.
/// The store, timed (`metrics::store::MeteredStore`) under its kind's name.
/// `claims`: the cluster's, for the streamed store (`None` on a single node).
async fn open_store(
    config: &Config,
    claims: Option<Arc<dyn SharedClaims>>,
) -> Result<Arc<dyn ChatStore>, StartError> {
    let metrics = &crate::metrics::get().store;
    let storage = &config.storage;
    let Some(url) = &storage.postgres_url else {
        let sqlite = SqliteStore::open(&config.data_dir.join(STORE_FILE))?;
        return Ok(Arc::new(MeteredStore::new(
            Arc::new(sqlite),
            "sqlite",
            metrics,
        )));
    };
    let kind = if storage.kafka.is_some() {
        "kafka"
    } else {
        "postgres"
    };
    let store = open_postgres(url, storage.kafka.as_ref(), claims).await?;
    Ok(Arc::new(MeteredStore::new(store, kind, metrics)))
}

/// PostgreSQL directly, or behind Kafka when `kafka` is set.
#[cfg(feature = "postgres")]
async fn open_postgres(
    url: &str,
    kafka: Option<&KafkaSettings>,
    claims: Option<Arc<dyn SharedClaims>>,
) -> Result<Arc<dyn ChatStore>, StartError> {
    use chat_store::{PostgresConfig, PostgresStore};

    let config = url.parse::<PostgresConfig>()?;
    let Some(kafka) = kafka else {
        let postgres = PostgresStore::connect(config).await?;
        tracing::info!("chat store: PostgreSQL");
        return Ok(Arc::new(postgres));
    };
    open_streamed(config, kafka, claims).await
}

#[cfg(not(feature = "postgres"))]
async fn open_postgres(
    _url: &str,
    _kafka: Option<&KafkaSettings>,
    _claims: Option<Arc<dyn SharedClaims>>,
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
    claims: Option<Arc<dyn SharedClaims>>,
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
        claims,
    )?))
}

#[cfg(all(feature = "postgres", not(feature = "kafka")))]
async fn open_streamed(
    _postgres: chat_store::PostgresConfig,
    _settings: &KafkaSettings,
    _claims: Option<Arc<dyn SharedClaims>>,
) -> Result<Arc<dyn ChatStore>, StartError> {
    Err(StartError::MissingFeature {
        setting: "--kafka-brokers",
        feature: "kafka",
    })
}
