//! The seam between the STOMP core and an application built on it (the chat is one): what a
//! session tells the application (connect, activity, close, a SEND to `/app/...`, the ACK or
//! NACK of a message the application published) and what it asks it (may this user use this
//! destination). The broker holds at most one application; with none installed the core is a
//! plain STOMP broker and `/app/...` is an unknown destination.
//!
//! Every call comes from a session's own task and must not block it: anything slow (a store)
//! is the application's to queue and answer later through the session's outbox.

use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use stomp_codec::{Command, Frame};

use crate::destination::Destination;
use crate::handle::SessionHandle;
use crate::outbox::Outbound;

/// How a client settled messages the application published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    Ack,
    Nack,
}

/// Why the application refuses a destination; the session reports it as access denied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

pub trait Application: Send + Sync + Debug {
    /// A session authenticated; awaited before its CONNECTED goes out, so state the
    /// application's synchronous checks need (e.g. [`Application::may_subscribe`]) is in place
    /// for the session's first frames.
    fn connected<'a>(&'a self, session: &'a Arc<SessionHandle>) -> BoxFuture<'a, ()>;

    /// A SEND to `/app/<action>` (outside a transaction, or at its COMMIT). When `receipt` is
    /// `Some` the application owns the RECEIPT: it answers (or reports the error) through the
    /// session's outbox once the request is done, so a RECEIPT means "done", not "received".
    /// At a COMMIT whose frame asked for a RECEIPT, `commit` is this SEND's share of it: the
    /// application lets go of it ([`CommitShare::answered`]) once the request is done in the
    /// same sense, and the COMMIT's RECEIPT goes out when every share is answered.
    fn send(
        &self,
        session: &Arc<SessionHandle>,
        action: &str,
        body: Bytes,
        receipt: Option<String>,
        commit: Option<CommitShare>,
    );

    /// The session ACKed or NACKed messages the application published with
    /// [`Message::app_ack`](crate::message::Message::app_ack) set (their ids).
    fn settled(&self, session: &Arc<SessionHandle>, settled: Settled, message_ids: Vec<u64>);

    /// Whether `user` may SUBSCRIBE to `destination` (`raw` as the client wrote it). Checked
    /// before the ACL.
    fn may_subscribe(
        &self,
        user: &str,
        raw: &str,
        destination: &Destination,
    ) -> Result<(), Refused>;

    /// Whether `user` may SEND to `destination` (`raw` as the client wrote it; `/app/...`
    /// included). Checked before the ACL.
    fn may_send(&self, user: &str, raw: &str, destination: &Destination) -> Result<(), Refused>;

    /// How often the application wants to hear that a session is alive (`None`: never).
    /// Signs of life closer together than this are not reported.
    fn activity_interval(&self) -> Option<Duration>;

    /// The session showed a sign of life (a frame or a heart-beat).
    fn active(&self, session: &Arc<SessionHandle>);

    /// The session ended, however it ended.
    fn closed(&self, session: &Arc<SessionHandle>);

    /// HTTP routes the application serves on the broker's HTTP port, beside `/ws`.
    fn routes(&self) -> axum::Router;
}

/// A COMMIT's RECEIPT, owed once every `/app` SEND of the transaction is done (stored, or its
/// error reported to the session): held in shares, one per SEND and one for the COMMIT itself,
/// and sent when the last share is answered. A share dropped unanswered (the application
/// stopped before answering, the COMMIT failed half way) withholds it: a RECEIPT must never
/// claim what did not happen.
#[derive(Debug)]
struct CommitReceipt {
    session: Arc<SessionHandle>,
    receipt: String,
    withheld: AtomicBool,
}

impl Drop for CommitReceipt {
    fn drop(&mut self) {
        if self.withheld.load(Ordering::Acquire) {
            return;
        }
        let frame = Frame::new(Command::Receipt).header("receipt-id", self.receipt.as_str());
        // A session that has gone refuses it, and nobody is left to tell.
        let _ = self.session.outbox.try_push(Outbound::Frame(frame));
    }
}

/// One holder's share of a COMMIT's RECEIPT (see [`Application::send`]).
#[derive(Debug)]
pub struct CommitShare(Option<Arc<CommitReceipt>>);

impl CommitShare {
    /// The COMMIT's own share of the RECEIPT `receipt` owed to `session`.
    pub fn new(session: Arc<SessionHandle>, receipt: String) -> Self {
        Self(Some(Arc::new(CommitReceipt {
            session,
            receipt,
            withheld: AtomicBool::new(false),
        })))
    }

    /// Another share, for one more request the RECEIPT waits for.
    pub fn share(&self) -> Self {
        Self(self.0.clone())
    }

    /// This share's request is done; the last one answered sends the RECEIPT.
    pub fn answered(mut self) {
        self.0 = None;
    }
}

impl Drop for CommitShare {
    fn drop(&mut self) {
        if let Some(receipt) = self.0.take() {
            receipt.withheld.store(true, Ordering::Release);
        }
    }
}
