//! What a connected session holds: its handle, negotiated version and heart-beats,
//! subscriptions, issued ack tags and open transactions. Built by `connect.rs`, driven by the
//! loop in `mod.rs`, changed by `request.rs` and `delivery.rs`.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::heartbeat::Heartbeat;
use super::subscription::Subscriptions;
use super::throttle::Throttle;
use crate::auth::Proof;
use crate::broker::Broker;
use crate::command::{AckRef, Publish};
use crate::destination::Destination;
use crate::handle::SessionHandle;
use crate::message::{Message, header_bytes};
use crate::moment::Moment;
use crate::wakeup::Wakeup;

/// Per-session record of issued ack tags: which subscription each belongs to; and what the
/// session's topic, user and temp-queue subscriptions hold back (delivered and unacknowledged,
/// or waiting for a prefetch window), bounded by `--max-unacked` and `--max-unacked-bytes`.
/// (A `/queue` subscription's holdings are bounded by its queue, which stops dispatching.)
#[derive(Debug, Default)]
pub(super) struct Acks {
    pub(super) next_tag: u64,
    pub(super) owner: AckOwners,
    /// `u32`s (saturating), not `usize`s: 8 B less in every session, idle or not; the bounds
    /// they are held to are far below 4 Gi.
    pub(super) held_messages: u32,
    pub(super) held_bytes: u32,
}

impl Acks {
    /// A subscription (not a queue's) holds `message` now.
    pub(super) fn hold(&mut self, message: &Message) {
        self.held_messages = self.held_messages.saturating_add(1);
        self.held_bytes = self.held_bytes.saturating_add(weight(message));
    }

    /// It no longer does.
    pub(super) fn release(&mut self, message: &Message) {
        self.held_messages = self.held_messages.saturating_sub(1);
        self.held_bytes = self.held_bytes.saturating_sub(weight(message));
    }
}

impl Acks {
    /// A tag for a delivery on `subscription` that awaits its ACK.
    pub(super) fn issue(&mut self, subscription: &Arc<str>) -> u64 {
        self.next_tag += 1;
        self.owner.insert(self.next_tag, Arc::clone(subscription));
        self.next_tag
    }
}

/// Which subscription each issued, unsettled ack tag belongs to: a B-tree map (no hasher
/// state), boxed on the first tag and dropped with the last one, as [`Transactions`] are, so
/// the sessions with no message awaiting an ACK (all idle ones) hold 8 B for it, not an
/// empty map's 24 nor, once a tag was issued, its emptied leaf.
#[allow(clippy::box_collection)]
#[derive(Debug, Default)]
pub(super) struct AckOwners(Option<Box<BTreeMap<u64, Arc<str>>>>);

impl AckOwners {
    pub(super) fn get(&self, tag: &u64) -> Option<&Arc<str>> {
        self.0.as_ref()?.get(tag)
    }

    pub(super) fn insert(&mut self, tag: u64, subscription: Arc<str>) {
        self.0.get_or_insert_default().insert(tag, subscription);
    }

    pub(super) fn remove(&mut self, tag: &u64) {
        let Some(owners) = self.0.as_mut() else {
            return;
        };
        owners.remove(tag);
        if owners.is_empty() {
            self.0 = None;
        }
    }
}

/// `message`'s weight as [`Acks`] counts it.
fn weight(message: &Message) -> u32 {
    u32::try_from(message.weight()).unwrap_or(u32::MAX)
}

/// A frame held by an open transaction until COMMIT.
#[derive(Debug)]
pub(super) enum TxOp {
    Send(Publish),
    Ack(AckRef),
    Nack(AckRef),
}

impl TxOp {
    /// A SEND to `/app/...`: the application's, done when it says so.
    pub(super) fn is_app_send(&self) -> bool {
        matches!(self, TxOp::Send(publish)
            if matches!(Destination::parse(&publish.destination), Ok(Destination::App(_))))
    }

    /// Bytes the frame holds while buffered (a fixed overhead for the bookkeeping).
    pub(super) fn weight(&self) -> usize {
        match self {
            TxOp::Send(publish) => {
                64 + publish.destination.len() + publish.body.len() + header_bytes(&publish.headers)
            }
            TxOp::Ack(_) | TxOp::Nack(_) => 64,
        }
    }
}

/// An open transaction: the frames it holds until COMMIT, and their bytes, both bounded.
#[derive(Debug, Default)]
pub(super) struct Transaction {
    pub(super) ops: Vec<TxOp>,
    pub(super) bytes: usize,
}

/// A session's open transactions, by name: a B-tree map (as `Acks::owner`, not a hash map: no
/// hasher state), boxed on the first BEGIN and dropped with the last one, so the sessions that
/// never open one (nearly all) hold 8 B for it rather than an empty map's 24, idle or not.
/// The extra allocation clippy warns of is the point: it is made on the first BEGIN only.
#[allow(clippy::box_collection)]
#[derive(Debug, Default)]
pub(super) struct Transactions(Option<Box<BTreeMap<String, Transaction>>>);

impl Transactions {
    pub(super) fn contains_key(&self, name: &str) -> bool {
        self.0.as_ref().is_some_and(|open| open.contains_key(name))
    }

    pub(super) fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |open| open.len())
    }

    pub(super) fn insert(&mut self, name: String, transaction: Transaction) {
        self.0.get_or_insert_default().insert(name, transaction);
    }

    pub(super) fn remove(&mut self, name: &str) -> Option<Transaction> {
        let open = self.0.as_mut()?;
        let removed = open.remove(name);
        if open.is_empty() {
            self.0 = None;
        }
        removed
    }

    pub(super) fn get_mut(&mut self, name: &str) -> Option<&mut Transaction> {
        self.0.as_mut()?.get_mut(name)
    }
}

pub(super) struct Session {
    pub(super) broker: Arc<Broker>,
    pub(super) handle: Arc<SessionHandle>,
    pub(super) heartbeat: Heartbeat,
    pub(super) subscriptions: Subscriptions,
    pub(super) acks: Acks,
    pub(super) transactions: Transactions,
    /// `Box<str>`, not `String`: 8 B less in every session, and it never grows.
    pub(super) reply_token: Option<Box<str>>,
    /// When the application last heard of this session's activity (it says how often it
    /// wants to: `Application::activity_interval`).
    pub(super) activity_reported: Moment,
    pub(super) throttle: Throttle,
    /// What vouched for the principal; rechecked after a reload.
    pub(super) proof: Proof,
    /// When the token the session was opened with expires (its `exp` plus the leeway).
    pub(super) expires_at: Option<Moment>,
    /// The next deadline's registration with the broker's timer (`crate::wakeup`).
    pub(super) wakeup: Wakeup,
    /// When the session, quiet since its last frame or delivery, may park (`park::QUIET`);
    /// `None` once that has passed.
    pub(super) quiet_after: Option<Moment>,
}
