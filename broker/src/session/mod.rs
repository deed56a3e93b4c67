//! A STOMP session: one connection from CONNECT to close.
//!
//! The session task owns everything about its connection: the transport, the codec, its
//! subscriptions, pending acknowledgements and open transactions. Other tasks reach it only
//! through its outbox (deliveries, and the handle's signals: close, recheck after a reload).
//! Its loop waits on three things at once — the outbox, the socket, one timer for every
//! deadline (heart-beats, the publisher pause, the token's expiry) — handles what arrived
//! without awaiting, then writes everything it produced as one batch.

mod connect;
mod delivery;
mod failure;
#[cfg(test)]
mod footprint;
pub mod heartbeat;
mod request;
mod revocation;
mod state;
pub mod subscription;
mod throttle;
mod wire;

use std::sync::Arc;

use stomp_codec::{Command, Frame, Item};
use tokio::time::{Instant, sleep_until};
use tracing::{debug, info};

use crate::admission::AdmissionPermit;
use crate::broker::Broker;
use crate::close::CloseReason;
use crate::command::Request;
use crate::error::StompError;
use crate::outbox::Outbound;
use crate::transport::{ReadOutcome, Transport};
use failure::{CLOSE_LINGER, Failure};
use state::Session;
use wire::Wire;

/// Runs one connection to its end and logs why it ended. The connection's share of the
/// admission limits (`permit`) is held to the end; its unauthenticated part goes at CONNECTED.
///
/// Not an `async fn`: an async fn keeps its arguments in its future twice (as captured, and
/// rebound in the body), and the `Transport` a third time inside the `Wire`, for every
/// session's life. The wire is built first, and the block uses what it captures in place.
pub fn serve(
    transport: Transport,
    broker: Arc<Broker>,
    permit: AdmissionPermit,
) -> impl Future<Output = ()> + Send {
    let mut wire = Wire::new(transport, &broker.config);
    let mut permit = permit;
    async move {
        let kind = wire.kind();
        let metrics = &crate::metrics::get().session;
        let _open = metrics.opened(kind);
        // Boxed: the handshake's state is large and short-lived; the task keeps only the loop's.
        // In a block: a local's slot in the task lasts to the end of its scope even once moved
        // from, so at function scope the handshake's `Result` (a whole `Session`) would sit beside
        // `session` for the connection's life.
        let mut session = {
            let address = permit.limited_address();
            let handshake =
                Box::pin(connect::handshake(&mut wire, &broker, permit.ip(), address)).await;
            permit.authenticated();
            match handshake {
                Ok(session) => session,
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
        let reason = session.run(&mut wire).await;
        metrics.closed(&reason);
        info!(
            session = %session.handle.name,
            principal = %session.handle.principal.name(),
            transport = kind,
            %reason,
            "session closed"
        );
        session.cleanup();
    }
}

/// A deadline that may not exist: `None` never fires.
async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => sleep_until(d).await,
        None => std::future::pending().await,
    }
}

impl Session {
    async fn run(&mut self, wire: &mut Wire) -> CloseReason {
        let ended = self.serve(wire).await;
        // The closing paths run once; boxed, their state is not part of every idle session.
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

    /// The connection loop. Returns how the session ended normally, or the error to report.
    async fn serve(&mut self, wire: &mut Wire) -> Result<CloseReason, Failure> {
        let handle = Arc::clone(&self.handle);
        // Frames that arrived right behind CONNECT are already buffered.
        if let Some(reason) = self.process_input(wire)? {
            return Ok(reason);
        }
        loop {
            if !wire.is_idle() {
                if let Err(e) = wire.flush().await {
                    return Ok(CloseReason::Io(e.to_string()));
                }
                self.heartbeat.sent();
            }
            // Read before the select: its futures borrow parts of the session.
            let deadline = self.next_deadline();
            let reading = self.throttle.resume_at().is_none();
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
                    self.drain_outbox(wire)?;
                }
                // One timer for every deadline (heart-beats both ways, the publisher pause, the
                // token's expiry): a session's resident state is per-connection memory.
                () = sleep_until_opt(deadline) => self.on_deadline(wire)?,
                read = wire.read(), if reading => match read {
                    Ok(ReadOutcome::Data) => {
                        self.alive();
                        if let Some(reason) = self.process_input(wire)? {
                            return Ok(reason);
                        }
                    }
                    Ok(ReadOutcome::Liveness) => self.alive(),
                    Ok(ReadOutcome::Eof) => return Ok(CloseReason::PeerClosed),
                    Err(e) => return Ok(CloseReason::Io(e.to_string())),
                },
            }
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        [
            self.heartbeat.send_deadline(),
            self.heartbeat.recv_deadline(),
            self.throttle.resume_at(),
            self.expires_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Whatever of the deadlines has passed: an expired token or a silent peer is an error; a
    /// due heart-beat is queued (the flush resets its deadline); a publisher pause ends.
    fn on_deadline(&mut self, wire: &mut Wire) -> Result<(), Failure> {
        let now = Instant::now();
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
        if self.throttle.resume_at().is_some_and(|d| d <= now) {
            self.throttle.resume();
        }
        Ok(())
    }

    /// The peer showed a sign of life: the heart-beat deadline moves, and the application
    /// hears of it (e.g. the chat's presence TTL moves).
    fn alive(&mut self) {
        self.heartbeat.received();
        if let Some(app) = &self.broker.app
            && let Some(every) = app.activity_interval()
            && self.activity_reported.elapsed() >= every
        {
            self.activity_reported = Instant::now();
            app.active(&self.handle);
        }
    }

    /// Handles every complete frame in the input buffer. `Some` when the session is over.
    fn process_input(&mut self, wire: &mut Wire) -> Result<Option<CloseReason>, Failure> {
        while let Some(item) = wire.decode().map_err(StompError::from)? {
            let Item::Frame(frame) = item else { continue };
            let receipt = frame.headers.get("receipt").map(str::to_string);
            let with_receipt = |error: StompError| Failure {
                error,
                receipt: receipt.clone(),
            };
            let mut request = Request::from_frame(frame, self.version).map_err(with_receipt)?;
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
