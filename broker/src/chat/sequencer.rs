//! The sequencer: one task that takes every accepted chat request in arrival order, runs
//! their asynchronous halves concurrently (so the store can group-commit many appends into
//! one fsync) and applies their outcomes strictly in arrival order, then answers whoever
//! asked: a session (RECEIPT, or an error on `/user/queue/errors`) or an HTTP API call.
//!
//! An answer promises what it says: a RECEIPT comes once the message is durable *and*, in a
//! cluster, once its copies for other nodes have left for Redis. Otherwise a node killed
//! between the two would have answered "stored" for a message that members connected to
//! other nodes never receive live (and, staying connected, never sync for).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use futures_util::stream::{FuturesOrdered, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::effect::{self, Effect};
use super::error::{AppError, ErrorOut};
use super::reply_queue::ReplyQueue;
use super::state::ChatCore;
use crate::app::CommitShare;
use crate::handle::SessionHandle;

/// Requests accepted but not yet applied; beyond this, new requests are refused with
/// `RATE_LIMITED` instead of queueing without bound.
const MAX_PENDING: usize = 8192;
/// What those requests weigh ([`ChatRequest::weight`](super::request::ChatRequest::weight)),
/// waiting or running: the count alone would let 8,192 requests of 4 MiB bodies (a
/// `chat.delivered` of half a million ids) pile up while the store is slow. Past it, new
/// requests are refused with `RATE_LIMITED` too. 64 MiB holds thousands of full-size messages.
const MAX_PENDING_BYTES: usize = 64 * 1024 * 1024;
/// Futures the sequencer runs at once (a group commit's worth and then some).
const MAX_IN_FLIGHT: usize = 1024;
/// Answers waiting for their effects to leave for other nodes; past it, no new request is
/// taken until some are answered.
const MAX_ANSWERING: usize = 8192;
/// How long an answer waits for its effects to leave for other nodes. Redis answers in well
/// under a millisecond; one that stalls this long (stopped, not refusing) is treated as
/// unreachable rather than stalling every RECEIPT behind it.
const CROSSING_WAIT: Duration = Duration::from_secs(2);

/// An operation's asynchronous half, built when the sequencer takes the request: the moment
/// that fixes its place in line, so a message id taken then is in arrival order.
pub type Work = Box<dyn FnOnce() -> BoxFuture<'static, Result<Outcome, AppError>> + Send>;

/// Work whose future can be built now (it only needs its place in line, not an id).
pub fn later(
    future: impl std::future::Future<Output = Result<Outcome, AppError>> + Send + 'static,
) -> Work {
    Box::new(move || future.boxed())
}

/// What an operation produced: effects to apply in order, and the reply for the requester.
#[derive(Debug, Default)]
pub struct Outcome {
    pub effects: Vec<Effect>,
    /// The reply body for the HTTP API (STOMP replies are effects).
    pub reply: Option<serde_json::Value>,
    /// For `chat.send`: its reply for the HTTP API, made JSON only if one asked
    /// ([`Outcome::into_reply`]).
    pub sent: Option<super::reply::Sent>,
    /// For `chat.send`: the stored message's id, carried by the RECEIPT.
    pub message_id: Option<u64>,
    /// For `chat.send` on a store whose durability comes after acceptance (Kafka): the
    /// effects reach this node's sessions now, other nodes and the answer (RECEIPT) once this
    /// resolves.
    pub durable: Option<Durable>,
}

impl Outcome {
    /// The reply body for the HTTP API.
    pub fn into_reply(self) -> serde_json::Value {
        match (self.reply, self.sent) {
            (Some(reply), _) => reply,
            (None, Some(sent)) => sent.into_json(),
            (None, None) => serde_json::Value::Null,
        }
    }
}

/// Resolves (`ack`) when an accepted message of `conversation` is durable, or definitely not
/// stored.
pub struct Durable {
    pub ack: chat_store::Durability,
    pub conversation: String,
}

impl std::fmt::Debug for Durable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Durable")
            .field("conversation", &self.conversation)
            .finish_non_exhaustive()
    }
}

/// Who asked, and how to answer.
#[derive(Debug)]
pub enum Requester {
    Session {
        session: Arc<SessionHandle>,
        receipt: Option<String>,
        client_message_id: Option<String>,
        /// Its share of a COMMIT's RECEIPT (a SEND of a committed transaction).
        commit: Option<CommitShare>,
        /// What was asked and when, for the metrics.
        asked: Asked,
    },
    /// The HTTP service API, answered through the channel.
    Service(oneshot::Sender<Result<Outcome, AppError>>),
    /// Nobody waits (presence announcements).
    Nobody,
}

/// A session's request as it reached the chat: its operation and when.
#[derive(Debug, Clone, Copy)]
pub struct Asked {
    operation: &'static str,
    at: std::time::Instant,
}

impl Asked {
    pub fn now(operation: &'static str) -> Self {
        Self {
            operation,
            at: std::time::Instant::now(),
        }
    }

    /// Counts the answer (`ok` or the error's code); a stored `send` with a RECEIPT also
    /// times SEND → RECEIPT.
    fn answered(self, result: &Result<Outcome, AppError>, receipt: bool) {
        let metrics = &crate::metrics::get().chat;
        let outcome = result.as_ref().map_or_else(AppError::code, |_| "ok");
        metrics.answered(self.operation, outcome);
        if receipt && outcome == "ok" && self.operation == "send" {
            metrics.send_receipt(self.at.elapsed());
        }
    }
}

struct Job {
    requester: Requester,
    work: Work,
    weight: usize,
}

/// The way into the sequencer.
#[derive(Debug, Clone)]
pub struct Sequencer {
    jobs_tx: mpsc::Sender<Job>,
    /// What the requests accepted and not yet applied weigh.
    pending_bytes: Arc<AtomicUsize>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("requester", &self.requester)
            .finish_non_exhaustive()
    }
}

impl Sequencer {
    /// Starts the sequencer task; it stops with `shutdown` once nothing is in flight.
    pub fn start(core: Arc<ChatCore>, tasks: &TaskTracker, shutdown: CancellationToken) -> Self {
        let (jobs_tx, jobs_rx) = mpsc::channel(MAX_PENDING);
        let pending_bytes = Arc::new(AtomicUsize::new(0));
        tasks.spawn(sequence(
            jobs_rx,
            core,
            Arc::clone(&pending_bytes),
            shutdown,
        ));
        Self {
            jobs_tx,
            pending_bytes,
        }
    }

    /// Queues `work` (a request weighing `weight` bytes) behind every request accepted before
    /// it; hands the requester back when the queue is full in requests or bytes (or the
    /// sequencer is gone).
    pub fn push(&self, requester: Requester, work: Work, weight: usize) -> Result<(), Requester> {
        let fits = self
            .pending_bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                held.checked_add(weight).filter(|b| *b <= MAX_PENDING_BYTES)
            })
            .is_ok();
        if !fits {
            return Err(requester);
        }
        let job = Job {
            requester,
            work,
            weight,
        };
        self.jobs_tx.try_send(job).map_err(|e| match e {
            mpsc::error::TrySendError::Full(job) | mpsc::error::TrySendError::Closed(job) => {
                self.pending_bytes.fetch_sub(job.weight, Ordering::AcqRel);
                job.requester
            }
        })
    }

    /// Queues work nobody waits for (small: a presence change); dropped when the queue is full.
    pub fn push_quietly(&self, work: Work) {
        let _ = self.push(Requester::Nobody, work, 0);
    }
}

/// The sequencer's loop: runs jobs concurrently, applies their outcomes in arrival order.
async fn sequence(
    mut jobs_rx: mpsc::Receiver<Job>,
    core: Arc<ChatCore>,
    pending_bytes: Arc<AtomicUsize>,
    shutdown: CancellationToken,
) {
    let mut running = FuturesOrdered::new();
    // In arrival order too: Redis takes the publishes in order, so none waits on a later one.
    let mut answering = FuturesOrdered::new();
    loop {
        tokio::select! {
            () = shutdown.cancelled(), if running.is_empty() && answering.is_empty() => return,
            job = jobs_rx.recv(), if running.len() < MAX_IN_FLIGHT && answering.len() < MAX_ANSWERING => {
                let Some(Job { requester, work, weight }) = job else { return };
                // Built here, in arrival order (a send takes its message id now).
                let future = work();
                crate::metrics::get().chat.concurrent.observe((running.len() + 1) as f64);
                running.push_back(async move { (requester, weight, future.await) });
            }
            Some((requester, weight, result)) = running.next() => {
                pending_bytes.fetch_sub(weight, Ordering::AcqRel);
                if let Some(answer) = finish(&core, requester, result) {
                    answering.push_back(answer);
                }
            }
            Some(()) = answering.next() => {}
        }
    }
}

/// Answers a request refused before it ran (it had no effects).
pub fn refuse(core: &Arc<ChatCore>, requester: Requester, error: AppError) {
    answer(core, requester, Err(error));
}

/// Applies an operation's effects, then answers whoever asked: at once when nothing crossed
/// to other nodes; once the effects have left for the other nodes (returned, for the
/// sequencer to await in order); or, for a message the store accepted before it is durable,
/// later ([`after_durable`]).
pub fn finish(
    core: &Arc<ChatCore>,
    requester: Requester,
    mut result: Result<Outcome, AppError>,
) -> Option<BoxFuture<'static, ()>> {
    if let Some(durable) = result.as_mut().ok().and_then(|o| o.durable.take()) {
        after_durable(core, requester, result, durable);
        return None;
    }
    let mut crossed = false;
    let result = result.map(|mut outcome| {
        for effect in std::mem::take(&mut outcome.effects) {
            crossed |= effect.crosses_nodes();
            core.apply(effect);
        }
        outcome
    });
    let waits = crossed && !matches!(requester, Requester::Nobody);
    let Some(flushed) = waits.then(|| core.flushed()).flatten() else {
        answer(core, requester, result);
        return None;
    };
    let core = Arc::clone(core);
    Some(
        async move {
            crossing(Some(flushed)).await;
            answer(&core, requester, result);
        }
        .boxed(),
    )
}

/// A message accepted before it is durable (Kafka): this node's sessions get it now; the
/// copies for other nodes leave once Kafka acknowledged it, in its conversation's order, and
/// not at all when Kafka refused it (`chat/to_peers.rs` says why: a reconnecting member's
/// sync covers only what Kafka appended before it). The answer comes after both, in a task
/// of its own: the next message's delivery and answer must not queue behind this one's ack.
fn after_durable(
    core: &Arc<ChatCore>,
    requester: Requester,
    mut result: Result<Outcome, AppError>,
    Durable { ack, conversation }: Durable,
) {
    let mut copies = Vec::new();
    if let Ok(outcome) = &mut result {
        for effect in std::mem::take(&mut outcome.effects) {
            copies.extend(core.apply_here(effect));
        }
    }
    // Taken now, in arrival order; the copies wait for the earlier messages' copies.
    let mut turn = core.crossings.take(&conversation);
    let message_id = result.as_ref().ok().and_then(|o| o.message_id);
    let core = Arc::clone(core);
    core.tasks.clone().spawn(async move {
        let stored = ack.await;
        turn.ready().await;
        let result = match stored {
            Ok(()) => result,
            Err(e) => Err(AppError::NotStored {
                message_id: message_id.unwrap_or_default(),
                reason: e.to_string(),
            }),
        };
        let mut flushed = None;
        if result.is_ok() && !copies.is_empty() {
            for copy in copies {
                core.send_to_peers(copy);
            }
            if !matches!(requester, Requester::Nobody) {
                flushed = core.flushed();
            }
        }
        drop(turn);
        crossing(flushed).await;
        answer(&core, requester, result);
    });
}

/// Waits (at most [`CROSSING_WAIT`]) for effects to leave for other nodes. A failed or slow
/// send answers all the same: the message is stored, and members elsewhere get it by sync.
async fn crossing(flushed: Option<oneshot::Receiver<()>>) {
    let Some(flushed) = flushed else { return };
    match tokio::time::timeout(CROSSING_WAIT, flushed).await {
        Ok(Ok(())) => {}
        Ok(Err(_)) => tracing::debug!("answered though the copies for other nodes were not sent"),
        Err(_) => tracing::warn!(
            "redis did not take the copies for other nodes within {CROSSING_WAIT:?}; answered anyway"
        ),
    }
}

fn answer(core: &ChatCore, requester: Requester, result: Result<Outcome, AppError>) {
    match requester {
        Requester::Nobody => {}
        Requester::Service(reply_tx) => {
            let _ = reply_tx.send(result);
        }
        Requester::Session {
            session,
            receipt,
            client_message_id,
            commit,
            asked,
        } => {
            asked.answered(&result, receipt.is_some());
            let effect = match result {
                Ok(outcome) => receipt.map(|id| Effect::Frame {
                    session,
                    frame: effect::receipt(&id, outcome.message_id),
                }),
                Err(error) => {
                    let body = ErrorOut {
                        code: error.code(),
                        message: error.to_string(),
                        receipt_id: receipt.as_deref(),
                        client_message_id: client_message_id.as_deref(),
                    };
                    Some(Effect::ToSession {
                        session,
                        queue: ReplyQueue::Errors,
                        payload: core.payload_of(&body),
                    })
                }
            };
            if let Some(effect) = effect {
                core.apply(effect);
            }
            // After this request's own answer: the COMMIT's RECEIPT follows its errors.
            if let Some(commit) = commit {
                commit.answered();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nothing() -> Work {
        later(async { Ok(Outcome::default()) })
    }

    #[test]
    fn the_queue_refuses_requests_past_its_bytes() {
        let (jobs_tx, _jobs_rx) = mpsc::channel(MAX_PENDING);
        let sequencer = Sequencer {
            jobs_tx,
            pending_bytes: Arc::new(AtomicUsize::new(0)),
        };
        let half = MAX_PENDING_BYTES / 2;
        assert!(sequencer.push(Requester::Nobody, nothing(), half).is_ok());
        assert!(sequencer.push(Requester::Nobody, nothing(), half).is_ok());
        assert!(
            sequencer.push(Requester::Nobody, nothing(), 1).is_err(),
            "past the bytes, though far under the count"
        );
    }
}
