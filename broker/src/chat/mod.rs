//! The built-in chat application: `/app/...` destinations (Spring `@MessageMapping` style) for
//! one-on-one and group messaging, receipts, typing, presence, sync and history, on a
//! [`ChatStore`]. It plugs into the STOMP core as its [`Application`](crate::app::Application)
//! (`application.rs`).
//!
//! A request is typed once where it enters (`request.rs`), admitted by the rate limit
//! (`rate.rs`), prepared by its operation (`op/`), and applied by the sequencer
//! (`sequencer.rs`), whose effects (`effect.rs`) reach sessions through the router.
//!
//! Ordering: every request is turned into a future and handed, in arrival order, to one
//! sequencer task. The sequencer runs the futures concurrently but applies their effects
//! strictly in arrival order. Message ids are taken when the sequencer takes the request (not
//! when a session parses it: two sessions on two threads would otherwise race between taking
//! an id and joining the queue), so within a node delivery order and id order agree.

mod application;
mod devices;
mod effect;
pub mod error;
pub mod http;
pub mod model;
mod op;
pub mod peers;
pub mod presence;
mod rate;
mod redelivery;
mod reply;
mod reply_queue;
mod request;
mod room;
mod sequencer;
mod state;
mod to_peers;
mod turn;

use std::sync::Arc;
use std::time::Duration;

use chat_store::ChatStore;
use dashmap::DashMap;
use tokio::sync::{broadcast, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::warn;

pub use devices::Devices;
pub use effect::OfflineEvent;
use error::AppError;
use peers::Backends;
use rate::RateLimit;
use redelivery::Redelivery;
pub(crate) use request::ChatRequest;
use request::Malformed;
pub use sequencer::Outcome;
use sequencer::{Asked, Requester, Sequencer};
pub use state::ChatCore;

use crate::app::CommitShare;
use crate::chore;
use crate::config::ChatConfig;
use crate::handle::SessionHandle;
use crate::id::IdGenerator;
use crate::idle::IdleMap;
use crate::router::Router;

/// How often idle users' rate buckets and typing states are evicted.
const EVICT_EVERY: Duration = Duration::from_secs(1);
/// Most entries of each map one eviction looks at: a sweep never stalls the runtime, and
/// several thousand users going idle per second are still kept up with.
const EVICT_MAX: usize = 4096;
/// Offline events buffered for the push service: a burst of group messages to offline members
/// is absorbed; past this the slowest reader lags (counted, `stompbox_push_lagged_total`).
const OFFLINE_EVENTS: usize = 16 * 1024;

/// The chat application; cheap to clone (every clone is the same chat).
#[derive(Debug, Clone)]
pub struct Chat {
    core: Arc<ChatCore>,
    sequencer: Sequencer,
}

impl Chat {
    /// Starts the sequencer, the presence sweeper and the eviction of idle users' state; all
    /// stop with `shutdown`.
    pub fn start(
        store: Arc<dyn ChatStore>,
        router: Arc<Router>,
        ids: Arc<IdGenerator>,
        config: ChatConfig,
        Backends {
            peers,
            presence,
            devices,
        }: Backends,
        tasks: &TaskTracker,
        shutdown: CancellationToken,
    ) -> Self {
        let (offline_tx, _) = broadcast::channel(OFFLINE_EVENTS);
        let core = Arc::new(ChatCore {
            store,
            router,
            ids,
            presence,
            peers,
            rate: RateLimit::new(&config),
            redelivery: Redelivery::default(),
            config,
            conversations: DashMap::new(),
            typing: IdleMap::new(op::TYPING_COALESCE),
            offline_tx,
            devices,
            tasks: tasks.clone(),
            turns: Arc::default(),
            crossings: Arc::default(),
        });
        let sequencer = Sequencer::start(Arc::clone(&core), tasks, shutdown.clone());
        {
            // A shared backend reports what changed later, through `announce`.
            let backend = Arc::clone(&core.presence);
            let (core, sequencer) = (Arc::clone(&core), sequencer.clone());
            let announce = move |change| {
                sequencer.push_quietly(op::presence_change(Arc::clone(&core), change));
            };
            backend.start(Box::new(announce), tasks, shutdown.clone());
        }
        let chat = Self { core, sequencer };
        chat.spawn_sweeper(tasks, shutdown.clone());
        chat.spawn_evictor(tasks, shutdown);
        chat
    }

    pub fn core(&self) -> &Arc<ChatCore> {
        &self.core
    }

    /// Events for recipients who were offline when a message was stored.
    pub fn offline_events(&self) -> broadcast::Receiver<OfflineEvent> {
        self.core.offline_tx.subscribe()
    }

    /// A request from a session. Never waits: the answer (RECEIPT, reply or error) arrives
    /// through the session's outbox; `commit`, its share of a COMMIT's RECEIPT, is answered
    /// after it.
    fn dispatch(
        &self,
        session: &Arc<SessionHandle>,
        request: Result<ChatRequest, Malformed>,
        receipt: Option<String>,
        commit: Option<CommitShare>,
    ) {
        let user = session.principal.name();
        let asked = Asked::now(request.as_ref().map_or("malformed", ChatRequest::operation));
        let (prepared, client_message_id, weight) = match request {
            Ok(request) => {
                // Errors of a send name its clientMessageId, so the client knows which one
                // failed.
                let client_message_id = request.client_message_id().map(str::to_string);
                let weight = request.weight();
                (
                    self.prepare(user, Some(session), request),
                    client_message_id,
                    weight,
                )
            }
            Err(malformed) => (Err(malformed.error), malformed.client_message_id, 0),
        };
        let requester = Requester::Session {
            session: Arc::clone(session),
            receipt,
            client_message_id,
            commit,
            asked,
        };
        let work = match prepared {
            Ok(work) => work,
            Err(error) => return sequencer::refuse(&self.core, requester, error),
        };
        if let Err(requester) = self.sequencer.push(requester, work, weight) {
            sequencer::refuse(&self.core, requester, AppError::RateLimited);
        }
    }

    /// The service API's way in: runs `request` as `user` and waits for its outcome.
    async fn call(&self, user: &str, request: ChatRequest) -> Result<Outcome, AppError> {
        let operation = request.operation();
        let result = self.call_inner(user, request).await;
        let outcome = result.as_ref().map_or_else(AppError::code, |_| "ok");
        crate::metrics::get().chat.answered(operation, outcome);
        result
    }

    async fn call_inner(&self, user: &str, request: ChatRequest) -> Result<Outcome, AppError> {
        let weight = request.weight();
        let work = self.prepare(user, None, request)?;
        let (tx, rx) = oneshot::channel();
        self.sequencer
            .push(Requester::Service(tx), work, weight)
            .map_err(|_| AppError::RateLimited)?;
        rx.await.map_err(|_| AppError::Unavailable)?
    }

    /// Every request's way to the sequencer: the rate limit, then the operation's
    /// synchronous half.
    fn prepare(
        &self,
        user: &str,
        session: Option<&Arc<SessionHandle>>,
        request: ChatRequest,
    ) -> Result<sequencer::Work, AppError> {
        self.core.rate.admit(user, &request)?;
        op::prepare(&self.core, user, session, request)
    }

    /// Loads the user's conversations (membership checks at SUBSCRIBE are synchronous) and
    /// marks the session present.
    async fn session_started(&self, session: &Arc<SessionHandle>) {
        let user = session.principal.name();
        match self.core.store.conversations_of(user).await {
            Ok(list) => {
                self.core.peers.conversations_loaded(user, &list);
                for c in list {
                    self.core.remember(c);
                }
            }
            Err(e) => warn!(%user, error = %e, "could not load conversations"),
        }
        self.presence_touch(session);
    }

    /// Any sign of life from a session.
    fn presence_touch(&self, session: &Arc<SessionHandle>) {
        self.presence_report(session, true);
    }

    fn session_ended(&self, session: &Arc<SessionHandle>) {
        self.presence_report(session, false);
    }

    /// A session's sign of life (`touch`) or end.
    fn presence_report(&self, session: &Arc<SessionHandle>, touch: bool) {
        let (user, id) = (session.principal.name(), session.id);
        // A shared backend answers `None` and announces what changed later.
        if let Some(change) = self.core.presence.report(user, id, touch) {
            self.sequencer
                .push_quietly(op::presence_change(Arc::clone(&self.core), change));
        }
    }

    fn spawn_sweeper(&self, tasks: &TaskTracker, shutdown: CancellationToken) {
        let core = Arc::clone(&self.core);
        let sequencer = self.sequencer.clone();
        let every = (core.presence.ttl() / 6).max(Duration::from_millis(100));
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let changes = core.presence.sweep().await;
                for change in changes {
                    sequencer.push_quietly(op::presence_change(Arc::clone(&core), change));
                }
            }
        });
    }

    /// Evicts idle users' rate buckets and typing states, a bounded number per tick.
    fn spawn_evictor(&self, tasks: &TaskTracker, shutdown: CancellationToken) {
        let core = Arc::clone(&self.core);
        chore::spawn_every(tasks, shutdown, EVICT_EVERY, move |now| {
            core.rate.sweep(now, EVICT_MAX);
            core.typing.sweep(now, EVICT_MAX);
        });
    }
}
