//! The built-in chat application: `/app/...` destinations (Spring `@MessageMapping` style) for
//! one-on-one and group messaging, receipts, typing, presence, sync and history, on a
//! [`ChatStore`].
//!
//! Ordering: every request is turned into a future and handed, in arrival order, to one
//! sequencer task. The sequencer runs the futures concurrently (so the store can group-commit
//! many appends into one fsync) but applies their effects strictly in arrival order. Message
//! ids are taken when the sequencer takes the request (not when a session parses it: two
//! sessions on two threads would otherwise race between taking an id and joining the queue),
//! so within a node delivery order and id order agree.

mod effect;
pub mod error;
pub mod http;
pub mod model;
mod ops;
pub mod peers;
pub mod presence;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chat_store::{ChatStore, Conversation};
use dashmap::DashMap;
use futures_util::stream::{FuturesOrdered, StreamExt};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::warn;

pub use effect::OfflineEvent;
use effect::{Effect, Payload};
use error::{AppError, ErrorOut};
use peers::{Backends, ChatPeers};
use presence::PresenceBackend;

use crate::config::ChatConfig;
use crate::handle::SessionHandle;
use crate::id::IdGenerator;
use crate::router::Router;

/// Requests accepted but not yet applied; beyond this, new requests are refused with
/// `RATE_LIMITED` instead of queueing without bound.
const MAX_PENDING: usize = 8192;
/// Futures the sequencer runs at once (a group commit's worth and then some).
const MAX_IN_FLIGHT: usize = 1024;

/// What an operation produced: effects to apply in order, and the reply for the requester.
#[derive(Debug, Default)]
pub struct Outcome {
    pub effects: Vec<Effect>,
    /// The reply body for the HTTP API (STOMP replies are effects).
    pub reply: Option<serde_json::Value>,
    /// For `chat.send`: the stored message's id, carried by the RECEIPT.
    pub message_id: Option<u64>,
    /// For `chat.send` on a store whose durability comes after acceptance (Kafka): the
    /// effects (live delivery) go out now, the answer (RECEIPT) when this resolves.
    pub durable: Option<Durable>,
}

/// Resolves when an accepted message is durable, or definitely not stored.
pub struct Durable(pub chat_store::Durability);

impl std::fmt::Debug for Durable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Durable(..)")
    }
}

/// Who asked, and how to answer.
#[derive(Debug)]
pub enum Requester {
    Session {
        session: Arc<SessionHandle>,
        receipt: Option<String>,
        client_message_id: Option<String>,
    },
    /// The HTTP service API, answered through the channel.
    Service(oneshot::Sender<Result<Outcome, AppError>>),
}

struct Job {
    requester: Requester,
    work: ops::Work,
}

/// Shared state the operations read.
#[derive(Debug)]
pub struct ChatCore {
    pub store: Arc<dyn ChatStore>,
    pub router: Arc<Router>,
    pub ids: Arc<IdGenerator>,
    pub presence: Arc<dyn PresenceBackend>,
    /// Other nodes, as far as the chat needs them.
    pub peers: Arc<dyn ChatPeers>,
    pub config: ChatConfig,
    /// Conversations seen by this node, for membership checks that cannot wait for the store
    /// (SUBSCRIBE to `/topic/conversation.<id>`, typing).
    conversations: DashMap<String, Arc<Conversation>>,
    /// Last typing state sent per (user, conversation), for coalescing.
    typing: DashMap<(String, String), (bool, Instant)>,
    /// Token bucket per user: (tokens, last refill).
    rate: DashMap<String, (f64, Instant)>,
    offline_tx: broadcast::Sender<OfflineEvent>,
    /// Where the chat's tasks run (joined at shutdown), answers that wait for durability too.
    tasks: TaskTracker,
}

#[derive(Debug)]
pub struct Chat {
    core: Arc<ChatCore>,
    jobs_tx: mpsc::Sender<Job>,
}

impl Chat {
    /// Starts the sequencer, the presence sweeper and the presence backend's own work, in
    /// `tasks`; all stop with `shutdown`.
    pub fn start(
        store: Arc<dyn ChatStore>,
        router: Arc<Router>,
        ids: Arc<IdGenerator>,
        config: ChatConfig,
        Backends { peers, presence }: Backends,
        tasks: &TaskTracker,
        shutdown: CancellationToken,
    ) -> Self {
        let (offline_tx, _) = broadcast::channel(1024);
        let core = Arc::new(ChatCore {
            store,
            router,
            ids,
            presence,
            peers,
            config,
            conversations: DashMap::new(),
            typing: DashMap::new(),
            rate: DashMap::new(),
            offline_tx,
            tasks: tasks.clone(),
        });
        let (jobs_tx, jobs_rx) = mpsc::channel(MAX_PENDING);
        tasks.spawn(sequence(jobs_rx, Arc::clone(&core), shutdown.clone()));
        {
            let backend = Arc::clone(&core.presence);
            let (core, jobs_tx) = (Arc::clone(&core), jobs_tx.clone());
            let announce = move |change| {
                submit(&jobs_tx, ops::presence_change(Arc::clone(&core), change));
            };
            backend.start(Box::new(announce), tasks, shutdown.clone());
        }
        let chat = Self { core, jobs_tx };
        chat.spawn_sweeper(tasks, shutdown);
        chat
    }

    pub fn core(&self) -> &Arc<ChatCore> {
        &self.core
    }

    /// Events for recipients who were offline when a message was stored.
    pub fn offline_events(&self) -> broadcast::Receiver<OfflineEvent> {
        self.core.offline_tx.subscribe()
    }

    /// A SEND to `/app/<action>` from a session. Never waits: the answer (RECEIPT, reply or
    /// error) arrives through the session's outbox.
    pub fn dispatch(
        &self,
        session: &Arc<SessionHandle>,
        action: &str,
        body: Bytes,
        receipt: Option<String>,
    ) {
        let user = session.principal.name().to_string();
        // Errors of a send name its clientMessageId, so the client knows which one failed.
        let mut client_message_id = None;
        let prepared = ops::prepare(
            &self.core,
            &user,
            Some(session),
            action,
            &body,
            &mut client_message_id,
        );
        let requester = Requester::Session {
            session: Arc::clone(session),
            receipt,
            client_message_id,
        };
        let work = match prepared {
            Ok(work) => work,
            Err(error) => return finish(&self.core, requester, Err(error)),
        };
        if let Err(mpsc::error::TrySendError::Full(job) | mpsc::error::TrySendError::Closed(job)) =
            self.jobs_tx.try_send(Job { requester, work })
        {
            finish(&self.core, job.requester, Err(AppError::RateLimited));
        }
    }

    /// The service API's way in: runs `action` as `user` and waits for its outcome.
    pub async fn call(&self, user: &str, action: &str, body: &[u8]) -> Result<Outcome, AppError> {
        let work = ops::prepare(&self.core, user, None, action, body, &mut None)?;
        let (tx, rx) = oneshot::channel();
        self.jobs_tx
            .try_send(Job {
                requester: Requester::Service(tx),
                work,
            })
            .map_err(|_| AppError::RateLimited)?;
        rx.await.map_err(|_| AppError::Unavailable)?
    }

    /// A session's ACK of chat messages counts as DELIVERED.
    pub fn acknowledged(&self, session: &Arc<SessionHandle>, message_ids: Vec<u64>) {
        let body = serde_json::json!({
            "messageIds": message_ids.iter().map(u64::to_string).collect::<Vec<_>>()
        });
        self.dispatch(
            session,
            "chat.delivered",
            Bytes::from(body.to_string()),
            None,
        );
    }

    /// Loads the user's conversations (membership checks at SUBSCRIBE are synchronous) and
    /// marks the session present.
    pub async fn session_started(&self, session: &Arc<SessionHandle>) {
        let user = session.principal.name();
        match self.core.store.conversations_of(user).await {
            Ok(list) => {
                for c in list {
                    self.core.remember(c);
                }
            }
            Err(e) => warn!(%user, error = %e, "could not load conversations"),
        }
        self.presence_touch(session);
    }

    /// Any sign of life from a session.
    pub fn presence_touch(&self, session: &Arc<SessionHandle>) {
        self.presence_report(session, true);
    }

    pub fn session_ended(&self, session: &Arc<SessionHandle>) {
        self.presence_report(session, false);
    }

    /// A session's sign of life (`touch`) or end.
    fn presence_report(&self, session: &Arc<SessionHandle>, touch: bool) {
        let (user, id) = (session.principal.name(), session.id);
        // A shared backend reports what changed later, through the `announce` given at start.
        if let Some(change) = self.core.presence.report(user, id, touch) {
            self.announce(change);
        }
    }

    /// Whether `user` may subscribe to `/topic/conversation.<id>`.
    pub fn may_watch(&self, user: &str, conversation: &str) -> bool {
        self.core
            .conversations
            .get(conversation)
            .is_some_and(|c| c.members.iter().any(|m| m.user_id == user))
    }

    fn announce(&self, change: presence::Change) {
        submit(
            &self.jobs_tx,
            ops::presence_change(Arc::clone(&self.core), change),
        );
    }

    fn spawn_sweeper(&self, tasks: &TaskTracker, shutdown: CancellationToken) {
        let core = Arc::clone(&self.core);
        let jobs_tx = self.jobs_tx.clone();
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
                    let (tx, _rx) = oneshot::channel();
                    let _ = jobs_tx.try_send(Job {
                        requester: Requester::Service(tx),
                        work: ops::presence_change(Arc::clone(&core), change),
                    });
                }
            }
        });
    }
}

impl ChatCore {
    pub fn remember(&self, conversation: Conversation) -> Arc<Conversation> {
        let conversation = Arc::new(conversation);
        self.conversations
            .insert(conversation.id.clone(), Arc::clone(&conversation));
        conversation
    }

    /// A conversation this node changed: cached here, and every other node's cache gets the
    /// new snapshot (membership checks there must see it).
    pub fn changed(&self, conversation: Conversation) -> Arc<Conversation> {
        self.peers.conversation_changed(&conversation);
        self.remember(conversation)
    }

    pub fn cached(&self, id: &str) -> Option<Arc<Conversation>> {
        self.conversations.get(id).map(|c| Arc::clone(c.value()))
    }

    pub fn payload(&self, json: serde_json::Value) -> Payload {
        Payload {
            id: self.ids.next_id(),
            json: Bytes::from(json.to_string()),
            chat: false,
        }
    }
}

/// Queues work nobody waits for (presence); dropped when the queue is full.
fn submit(jobs_tx: &mpsc::Sender<Job>, work: ops::Work) {
    let (tx, _rx) = oneshot::channel();
    let _ = jobs_tx.try_send(Job {
        requester: Requester::Service(tx),
        work,
    });
}

/// The sequencer: runs jobs concurrently, applies their outcomes in arrival order.
async fn sequence(
    mut jobs_rx: mpsc::Receiver<Job>,
    core: Arc<ChatCore>,
    shutdown: CancellationToken,
) {
    let mut running = FuturesOrdered::new();
    loop {
        tokio::select! {
            () = shutdown.cancelled(), if running.is_empty() => return,
            job = jobs_rx.recv(), if running.len() < MAX_IN_FLIGHT => {
                let Some(Job { requester, work }) = job else { return };
                // Built here, in arrival order (a send takes its message id now).
                let future = work();
                running.push_back(async move { (requester, future.await) });
            }
            Some((requester, result)) = running.next() => finish(&core, requester, result),
        }
    }
}

/// Applies an operation's effects, then answers whoever asked — at once, or when the
/// message is durable if the store accepted it first (the sequencer does not wait for that:
/// the next message's delivery must not queue behind this one's Kafka ack).
fn finish(core: &Arc<ChatCore>, requester: Requester, result: Result<Outcome, AppError>) {
    let mut result = result.map(|mut outcome| {
        for effect in std::mem::take(&mut outcome.effects) {
            effect.apply(core);
        }
        outcome
    });
    let durable = result.as_mut().ok().and_then(|o| o.durable.take());
    if let Some(Durable(durable)) = durable {
        let message_id = result.as_ref().ok().and_then(|o| o.message_id);
        let core = Arc::clone(core);
        core.tasks.clone().spawn(async move {
            let result = match durable.await {
                Ok(()) => result,
                Err(e) => Err(AppError::NotStored {
                    message_id: message_id.unwrap_or_default(),
                    reason: e.to_string(),
                }),
            };
            answer(&core, requester, result);
        });
        return;
    }
    answer(core, requester, result);
}

fn answer(core: &ChatCore, requester: Requester, result: Result<Outcome, AppError>) {
    match requester {
        Requester::Service(reply_tx) => {
            let _ = reply_tx.send(result);
        }
        Requester::Session {
            session,
            receipt,
            client_message_id,
        } => {
            let effect = match result {
                Ok(outcome) => match receipt {
                    Some(id) => Effect::Frame {
                        session,
                        frame: effect::receipt(&id, outcome.message_id),
                    },
                    None => return,
                },
                Err(error) => {
                    let body = ErrorOut {
                        code: error.code(),
                        message: error.to_string(),
                        receipt_id: receipt.as_deref(),
                        client_message_id: client_message_id.as_deref(),
                    };
                    Effect::ToSession {
                        session,
                        queue: "errors",
                        payload: core.payload(serde_json::to_value(body).unwrap_or_default()),
                    }
                }
            };
            effect.apply(core);
        }
    }
}
