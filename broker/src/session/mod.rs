//! A STOMP session: one connection from CONNECT to close.
//!
//! A session owns everything about its connection: the transport, the codec, its
//! subscriptions, pending acknowledgements and open transactions. Other tasks reach it only
//! through its outbox (deliveries, and the handle's signals: close, recheck after a reload).
//! Its loop waits on three things at once — the outbox, the socket, one deadline for all
//! (heart-beats, the token's expiry, the end of the quiet period) fired by the broker's timer
//! task — plus, while a publisher is paused, the pause's own timer; it handles what arrived
//! without awaiting, then writes everything it produced as one batch.
//! A session quiet for a second leaves its task and waits parked on the same three things
//! ([`park`]): an idle connection costs its state, not a task.

mod batch;
mod connect;
mod delivery;
mod failure;
#[cfg(test)]
mod footprint;
pub mod heartbeat;
mod park;
mod request;
mod revocation;
mod state;
pub mod subscription;
mod throttle;
mod wire;

use std::sync::Arc;
use std::task::Context;

use stomp_codec::{Command, Frame, Item};
use tokio::time::sleep_until;
use tokio_util::task::task_tracker::TaskTrackerToken;
use tracing::{debug, info};

use crate::admission::{AdmissionPermit, ConnectedPermit};
use crate::broker::Broker;
use crate::close::CloseReason;
use crate::command::Request;
use crate::error::StompError;
use crate::moment::Moment;
use crate::outbox::Outbound;
use crate::transport::{ReadOutcome, Transport};
use failure::{CLOSE_LINGER, Failure};
use park::{Parkable, Parking, park};
use state::Session;
use wire::Wire;

/// Runs one connection to its end and logs why it ended. The connection's share of the
/// admission limits (`permit`) is held to the end; its unauthenticated part goes at CONNECTED.
///
/// The returned future is the connection's first task: the handshake, then the session's
/// loop until it ends or first goes quiet and parks ([`park`]); each wake-up of a parked
/// session resumes it in a task of its own. Shutdown waits for parked sessions too (each
/// holds a token of `broker.sessions`).
///
/// Not an `async fn`: an async fn keeps its arguments in its future twice (as captured, and
/// rebound in the body), and the `Transport` a third time inside the `Wire`, for as long as
/// the task lives. The wire is built first, and the block uses what it captures in place.
pub fn serve(
    transport: Transport,
    broker: Arc<Broker>,
    permit: AdmissionPermit,
) -> impl Future<Output = ()> + Send {
    let mut wire = Wire::new(transport, &broker.config);
    async move {
        let kind = wire.kind();
        let metrics = &crate::metrics::get().session;
        let tracked = broker.sessions.token();
        // Boxed: the handshake's state is large and short-lived; the task keeps only the loop's.
        // In a block: a local's slot in the task lasts to the end of its scope even once moved
        // from, so at function scope the handshake's `Result` (a whole `Session`) would sit beside
        // the resident state for as long as this first task lives.
        let (session, permit) = {
            let address = permit.limited_address();
            let handshake =
                Box::pin(connect::handshake(&mut wire, &broker, permit.ip(), address)).await;
            let permit = permit.authenticated();
            match handshake {
                Ok(session) => (session, permit),
                Err(reason) => {
                    metrics.closed(&reason);
                    if reason == CloseReason::PeerClosed {
                        debug!(transport = kind, "connection closed before CONNECTED");
                    } else {
                        info!(transport = kind, %reason, "connection closed before CONNECTED");
                    }
                    return;
                }
            }
        };
        metrics.connected(kind);
        Box::new(Resident {
            session,
            wire,
            _permit: permit,
            _tracked: tracked,
        })
        .run()
        .await;
    }
}

/// Everything a connected session owns, boxed so that it can leave its task while idle.
pub(super) struct Resident {
    session: Session,
    wire: Wire,
    /// The connection's share of the admission limits, held to the end.
    _permit: ConnectedPermit,
    /// Shutdown waits for the session, parked or not.
    _tracked: TaskTrackerToken,
}

/// How a turn of the session's loop ended.
enum Turn {
    /// Quiet for a while with nothing to do: park.
    Quiet,
    /// The session is over, normally.
    Closed(CloseReason),
}

impl Resident {
    /// The session's loop, from CONNECTED or from a parked session's wake-up, until the session
    /// ends (then it closes and cleans up) or parks (then the task ends).
    async fn run(mut self: Box<Self>) {
        let ended = loop {
            self.unregister();
            let Resident { session, wire, .. } = &mut *self;
            match session.serve(wire).await {
                Ok(Turn::Quiet) => match park(self) {
                    Parking::Parked => return,
                    Parking::Resumed(resident) => self = resident,
                },
                Ok(Turn::Closed(reason)) => break Ok(reason),
                Err(failure) => break Err(failure),
            }
        };
        let Resident { session, wire, .. } = &mut *self;
        let reason = session.close(wire, ended).await;
        crate::metrics::get().session.closed(&reason);
        info!(
            session = %session.handle.name,
            principal = %session.handle.principal.name(),
            transport = wire.kind(),
            %reason,
            "session closed"
        );
        self.session.cleanup();
    }

    /// In a task (again): a deadline registration made while parking (with the parked
    /// record's waker) is dropped, so that the loop's first poll registers the task's. The
    /// outbox's and the socket's are replaced by that poll anyway: a select that waits has
    /// polled every branch.
    fn unregister(&mut self) {
        let session = &mut self.session;
        session.broker.wakeups.cancel(&mut session.wakeup);
    }
}

impl Parkable for Resident {
    /// Registers the session's wake-ups (outbox, deadline, socket) with `cx`'s waker. True
    /// when one of them is ready already: the session must not park.
    fn register(&mut self, cx: &mut Context<'_>) -> bool {
        let Resident { session, wire, .. } = self;
        wire.shed_buffers();
        if session.handle.outbox.register(cx) {
            return true;
        }
        let deadline = session.next_deadline();
        let wakeups = &session.broker.wakeups;
        // The registration the loop made holds the ending task's waker: made anew.
        wakeups.cancel(&mut session.wakeup);
        if wakeups
            .poll_deadline(&mut session.wakeup, deadline, cx)
            .is_ready()
        {
            return true;
        }
        wire.poll_read_once(cx)
    }

    /// On the broker's runtime, the one the session was parked from. A runtime shutting
    /// down drops the session instead, as it drops its tasks.
    fn resume(self: Box<Self>) {
        let runtime = self.session.broker.runtime.clone();
        runtime.spawn(self.run());
    }
}

impl Session {
    /// Ends the session as `ended` says: a normal end flushes and closes with a linger; a
    /// failure sends ERROR first. The closing paths run once; boxed, their state is not part
    /// of every idle session.
    async fn close(&mut self, wire: &mut Wire, ended: Result<CloseReason, Failure>) -> CloseReason {
        Box::pin(async move {
            match ended {
                Ok(reason) => {
                    if let Err(e) = wire.flush().await {
                        return CloseReason::Io(e.to_string());
                    }
                    wire.close(CLOSE_LINGER).await;
                    reason
                }
                Err(failure) => wire.fail(failure).await,
            }
        })
        .await
    }

    /// The connection loop: returns when the session ends normally, when it fails (the error
    /// to report), or when it has been quiet for [`park::QUIET`] and may park. It always
    /// handles at least one event first, so a wake-up of a parked session is never parked
    /// again unseen.
    async fn serve(&mut self, wire: &mut Wire) -> Result<Turn, Failure> {
        let handle = Arc::clone(&self.handle);
        // Frames that arrived right behind CONNECT are already buffered.
        if let Some(reason) = self.process_input(wire)? {
            return Ok(Turn::Closed(reason));
        }
        let mut first = true;
        loop {
            if !wire.is_idle() {
                if let Err(e) = wire.flush().await {
                    return Ok(Turn::Closed(CloseReason::Io(e.to_string())));
                }
                self.heartbeat.sent(self.broker.clock.now());
            }
            if !first && self.may_park(wire) {
                return Ok(Turn::Quiet);
            }
            first = false;
            // Read before the select: its futures borrow parts of the session.
            let deadline = self.next_deadline();
            let paused = self.throttle.resume_at();
            tokio::select! {
                biased;
                // Deliveries and signals (close, recheck after a reload) wake the same wait:
                // an idle session holds one waiting future for all of them.
                () = handle.outbox.ready() => {
                    let signals = handle.take_signals();
                    if signals.close() {
                        return Err(handle.closing_error().into());
                    }
                    if signals.recheck() {
                        self.recheck()?;
                    }
                    self.busy();
                    self.drain_outbox(wire)?;
                }
                // One deadline for all (heart-beats both ways, the token's expiry, the end of the
                // quiet period), fired by the broker's timer task rather than a `Sleep` of our
                // own: a session's resident state is per-connection memory.
                () = std::future::poll_fn(|cx| {
                    self.broker.wakeups.poll_deadline(&mut self.wakeup, deadline, cx)
                }) => self.on_deadline(wire)?,
                // A publisher's pause (≤ 10 ms, many a second) is a busy session's own timer:
                // through the shared one, each would cost the timer task a wake-up and a task
                // hop on top, and fan-out measured slower (docs/benchmarks.md, "Fourth cuts").
                () = sleep_until(self.broker.clock.instant(paused.unwrap_or(Moment::ORIGIN))),
                    if paused.is_some() => {
                    self.throttle.resume();
                }
                read = wire.read(), if paused.is_none() => match read {
                    Ok(ReadOutcome::Data) => {
                        self.alive();
                        if let Some(reason) = self.process_input(wire)? {
                            return Ok(Turn::Closed(reason));
                        }
                    }
                    Ok(ReadOutcome::Liveness) => self.alive(),
                    Ok(ReadOutcome::Eof) => return Ok(Turn::Closed(CloseReason::PeerClosed)),
                    Err(e) => return Ok(Turn::Closed(CloseReason::Io(e.to_string()))),
                },
            }
        }
    }

    /// Whether the session may leave its task: its transport can wait without one, it is
    /// reading (not paused), and nothing happened for [`park::QUIET`].
    fn may_park(&self, wire: &Wire) -> bool {
        wire.parks() && self.throttle.resume_at().is_none() && self.quiet_after.is_none()
    }

    /// A frame came in or deliveries went out: the session stays in its task for a while.
    fn busy(&mut self) {
        self.quiet_after = Some(self.broker.clock.now() + park::QUIET);
    }

    fn next_deadline(&self) -> Option<Moment> {
        [
            self.heartbeat.send_deadline(),
            self.heartbeat.recv_deadline(),
            self.expires_at,
            self.quiet_after,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Whatever of the deadlines has passed: an expired token or a silent peer is an error; a
    /// due heart-beat is queued (the flush resets its deadline); the quiet period ends.
    fn on_deadline(&mut self, wire: &mut Wire) -> Result<(), Failure> {
        let now = self.broker.clock.now();
        if self.token_expired(now) {
            return Err(StompError::TokenExpired.into());
        }
        if self.heartbeat.recv_deadline().is_some_and(|d| d <= now) {
            let ms = self.heartbeat.recv_timeout_ms();
            return Err(StompError::HeartbeatTimeout(ms).into());
        }
        if self.heartbeat.send_deadline().is_some_and(|d| d <= now) {
            wire.push_heartbeat();
        }
        if self.quiet_after.is_some_and(|d| d <= now) {
            self.quiet_after = None;
        }
        Ok(())
    }

    /// The peer showed a sign of life: the heart-beat deadline moves, and the application
    /// hears of it (e.g. the chat's presence TTL moves).
    fn alive(&mut self) {
        let now = self.broker.clock.now();
        self.heartbeat.received(now);
        if let Some(app) = &self.broker.app
            && let Some(every) = app.activity_interval()
            && now.since(self.activity_reported) >= every
        {
            self.activity_reported = now;
            app.active(&self.handle);
        }
    }

    /// Handles every complete frame in the input buffer. `Some` when the session is over.
    /// Consecutive SENDs to one topic are routed together, as a run ([`batch`]), before any
    /// other frame is handled and at the latest when the buffer is done.
    fn process_input(&mut self, wire: &mut Wire) -> Result<Option<CloseReason>, Failure> {
        let mut batch = batch::Batch::default();
        let outcome = self.process_frames(wire, &mut batch);
        self.route_batch(&mut batch);
        outcome
    }

    fn process_frames(
        &mut self,
        wire: &mut Wire,
        batch: &mut batch::Batch,
    ) -> Result<Option<CloseReason>, Failure> {
        while let Some(item) = wire.decode().map_err(StompError::from)? {
            let Item::Frame(frame) = item else { continue };
            self.busy();
            let receipt = frame.headers.get("receipt").map(str::to_string);
            let with_receipt = |error: StompError| Failure {
                error,
                receipt: receipt.clone(),
            };
            let request = Request::from_frame(frame, wire.version()).map_err(with_receipt)?;
            let Some(mut request) = self.gather(batch, request).map_err(with_receipt)? else {
                continue;
            };
            let done = self
                .handle_request(wire, request.command, &mut request.receipt)
                .map_err(with_receipt)?;
            if let Some(id) = &request.receipt {
                // Deliveries routed to us by this very frame go out before its RECEIPT.
                self.drain_outbox(wire)?;
                wire.push(&Frame::new(Command::Receipt).header("receipt-id", id.as_str()));
            }
            if done {
                return Ok(Some(CloseReason::ClientDisconnect));
            }
        }
        Ok(None)
    }

    /// Gives back everything the session held: subscriptions leave the router, and queue
    /// messages it had not settled (delivered-but-unacked first, then still in its outbox) go
    /// back to their queues for redelivery. Open transactions are dropped, i.e. aborted.
    fn cleanup(mut self) {
        self.broker.wakeups.cancel(&mut self.wakeup);
        let router = &self.broker.router;
        // Close the outbox first so no queue dispatches to us while we hand messages back.
        let leftovers = self.handle.outbox.close();
        router.unregister(self.handle.id);
        if let Some(app) = &self.broker.app {
            app.closed(&self.handle);
        }
        if let Some(token) = &self.reply_token {
            router.remove_reply_token(token);
        }
        let ids = self.subscriptions.ids();
        for id in ids {
            self.remove_subscription(&id);
        }
        for item in leftovers {
            if let Outbound::Deliver(delivery) = item
                && let Some(queue) = delivery.queue
            {
                queue.give_back(vec![(delivery.message, delivery.redelivered)]);
            }
        }
    }
}
