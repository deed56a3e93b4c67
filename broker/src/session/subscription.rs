//! One subscription of a session: where it is registered, how it acknowledges, and the
//! messages delivered on it that still await ACK.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use crate::command::AckMode;
use crate::message::{Delivery, Message};
use crate::router::queue::Queue;

#[derive(Debug)]
pub enum Registration {
    /// A `/topic` name or pattern.
    Topic(String),
    Queue(Arc<Queue>),
    /// Key in the router's user table.
    User(String),
    /// An explicit SUBSCRIBE to `/temp-queue/<name>`: replies then carry this id.
    TempQueue(String),
}

#[derive(Debug)]
pub struct Subscription {
    pub id: Arc<str>,
    pub registration: Registration,
    /// The MESSAGE `destination` when it differs from the sent one (`/user/queue/x`).
    pub destination: Option<Arc<str>>,
    pub ack: AckMode,
    /// 0 = unlimited.
    pub prefetch: u32,
    /// What it holds back, boxed on first use and dropped once empty: an auto-ack
    /// subscription (nearly every idle one) keeps 8 B for it, not 56, and a subscription is
    /// then 80 B, not 128 (docs/benchmarks.md, "Seventh cuts").
    held: Option<Box<Held>>,
}

#[derive(Debug, Default)]
struct Held {
    /// Delivered, awaiting ACK, by ack tag (tags increase with delivery order).
    pending: BTreeMap<u64, Arc<Message>>,
    /// Topic deliveries waiting for the prefetch window to open.
    backlog: VecDeque<Delivery>,
}

/// What a subscription without a [`Held`] box holds: nothing.
static NOTHING_PENDING: BTreeMap<u64, Arc<Message>> = BTreeMap::new();
static NOTHING_WAITING: VecDeque<Delivery> = VecDeque::new();

impl Subscription {
    pub fn new(
        id: Arc<str>,
        registration: Registration,
        destination: Option<Arc<str>>,
        ack: AckMode,
        prefetch: u32,
    ) -> Self {
        Self {
            id,
            registration,
            destination,
            ack,
            prefetch,
            held: None,
        }
    }

    /// Delivered, awaiting ACK, by ack tag (tags increase with delivery order).
    pub fn pending(&self) -> &BTreeMap<u64, Arc<Message>> {
        self.held.as_ref().map_or(&NOTHING_PENDING, |h| &h.pending)
    }

    /// Topic deliveries waiting for the prefetch window to open.
    pub fn backlog(&self) -> &VecDeque<Delivery> {
        self.held.as_ref().map_or(&NOTHING_WAITING, |h| &h.backlog)
    }

    /// `message`, delivered as `tag`, awaits its ACK.
    pub fn hold_pending(&mut self, tag: u64, message: Arc<Message>) {
        self.held
            .get_or_insert_default()
            .pending
            .insert(tag, message);
    }

    /// `delivery` waits for the prefetch window.
    pub fn hold_back(&mut self, delivery: Delivery) {
        self.held
            .get_or_insert_default()
            .backlog
            .push_back(delivery);
    }

    /// The first delivery waiting for the window, if any.
    pub fn next_waiting(&mut self) -> Option<Delivery> {
        let next = self.held.as_mut()?.backlog.pop_front();
        self.release_if_empty();
        next
    }

    fn release_if_empty(&mut self) {
        if self
            .held
            .as_ref()
            .is_some_and(|h| h.pending.is_empty() && h.backlog.is_empty())
        {
            self.held = None;
        }
    }

    /// Whether another delivery must wait for an ACK first.
    pub fn window_full(&self) -> bool {
        self.ack.tracks_acks()
            && self.prefetch > 0
            && self.pending().len() >= self.prefetch as usize
    }

    pub fn queue(&self) -> Option<&Arc<Queue>> {
        match &self.registration {
            Registration::Queue(q) => Some(q),
            _ => None,
        }
    }

    /// Removes and returns what an ACK/NACK of `tag` settles: just `tag` for
    /// client-individual, `tag` and everything delivered before it for client.
    pub fn settle(&mut self, tag: u64) -> Vec<(u64, Arc<Message>)> {
        let Some(held) = self.held.as_mut() else {
            return Vec::new();
        };
        let pending = &mut held.pending;
        let settled = match self.ack {
            AckMode::ClientIndividual => pending
                .remove(&tag)
                .map(|m| vec![(tag, m)])
                .unwrap_or_default(),
            _ => {
                let rest = pending.split_off(&(tag + 1));
                let settled = std::mem::replace(pending, rest);
                settled.into_iter().collect()
            }
        };
        self.release_if_empty();
        settled
    }

    /// The ack tag of the pending message with this message id (1.0/1.1 ACK by message-id).
    pub fn tag_of(&self, message_id: u64) -> Option<u64> {
        self.pending()
            .iter()
            .find(|(_, m)| m.id == message_id)
            .map(|(tag, _)| *tag)
    }
}

/// A session's subscriptions, by id. Kept as a vector sorted by id rather than a hash map: an
/// idle session with one subscription then costs one element instead of a table of buckets
/// (per-connection memory is a design target), and lookups stay logarithmic.
#[derive(Debug, Default)]
pub struct Subscriptions(Vec<Subscription>);

impl Subscriptions {
    fn position(&self, id: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|s| (*s.id).cmp(id))
    }

    pub fn contains(&self, id: &str) -> bool {
        self.position(id).is_ok()
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut Subscription> {
        let at = self.position(id).ok()?;
        self.0.get_mut(at)
    }

    /// Adds `subscription`; the caller has checked its id is free.
    pub fn insert(&mut self, subscription: Subscription) {
        match self.position(&subscription.id) {
            Ok(at) => self.0[at] = subscription,
            Err(at) => {
                // Most sessions hold one subscription for life (their /user queue): room for
                // exactly one, not the four a first push reserves (issue 17, idle memory).
                if self.0.capacity() == 0 {
                    self.0.reserve_exact(1);
                }
                self.0.insert(at, subscription)
            }
        }
    }

    pub fn remove(&mut self, id: &str) -> Option<Subscription> {
        let at = self.position(id).ok()?;
        Some(self.0.remove(at))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Subscription> {
        self.0.iter()
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Subscription> {
        self.0.iter_mut()
    }

    pub fn ids(&self) -> Vec<Arc<str>> {
        self.0.iter().map(|s| Arc::clone(&s.id)).collect()
    }
}
