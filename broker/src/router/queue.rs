//! A `/queue` destination: competing consumers with round-robin dispatch, prefetch windows,
//! and redelivery of what a consumer NACKs or leaves unacknowledged; and this node's table of
//! queues, bounded in number, in messages and bytes per queue, and in bytes over all queues
//! (the node's budget), whose idle empty queues expire.
//!
//! Lock order: a queue's mutex may be held while pushing into a session's outbox (queue →
//! outbox); a session never takes a queue lock while holding its outbox lock.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use dashmap::DashMap;
use parking_lot::Mutex;
use tokio::time::Instant;

use crate::config::Limits;
pub use crate::error::QueueFull;
use crate::handle::SessionHandle;
use crate::message::{Delivery, Message, ReturnAddress, Target};
use crate::outbox::Outbound;
use crate::subscription_id::SubscriptionId;

#[derive(Debug)]
struct Consumer {
    session: Arc<SessionHandle>,
    subscription: Arc<str>,
    /// Unacknowledged deliveries allowed at once; 0 = unlimited.
    prefetch: u32,
    /// Auto-ack consumers settle on write; they are never counted in flight.
    tracks_acks: bool,
    in_flight: u32,
    /// What the in-flight messages weigh ([`Message::weight`]).
    in_flight_bytes: usize,
}

impl Consumer {
    /// Room for one more delivery: within its prefetch window, and within the window every
    /// acknowledging consumer has even without one (`--max-unacked`, `--max-unacked-bytes`), so
    /// a consumer that never ACKs stops receiving instead of piling messages up in the broker.
    fn has_room(&self, limits: &QueueLimits) -> bool {
        !self.tracks_acks
            || ((self.prefetch == 0 || self.in_flight < self.prefetch)
                && (self.in_flight as usize) < limits.max_unacked
                && self.in_flight_bytes < limits.max_unacked_bytes)
    }

    /// `count` messages weighing `bytes` left its window (settled, or back in the queue).
    fn release(&mut self, count: u32, bytes: usize) {
        self.in_flight = self.in_flight.saturating_sub(count);
        self.in_flight_bytes = self.in_flight_bytes.saturating_sub(bytes);
    }
}

#[derive(Debug)]
struct Entry {
    message: Arc<Message>,
    redelivered: bool,
}

#[derive(Debug)]
struct State {
    messages: VecDeque<Entry>,
    /// What `messages` weigh ([`Message::weight`]: body, headers, bookkeeping).
    bytes: usize,
    consumers: Vec<Consumer>,
    next: usize,
    /// Last SEND, SUBSCRIBE, UNSUBSCRIBE or dispatch: an empty queue with no consumer expires
    /// once this is older than the idle expiry.
    used: Instant,
}

impl State {
    fn new() -> Self {
        Self {
            messages: VecDeque::new(),
            bytes: 0,
            consumers: Vec::new(),
            next: 0,
            used: Instant::now(),
        }
    }
}

/// The bounds of this node's queues (from `--queue-max-messages`, `--queue-max-bytes`,
/// `--queue-budget-bytes`, `--max-queues`, `--queue-idle-expiry`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLimits {
    /// Messages one queue holds while no consumer takes them.
    pub max_messages: usize,
    /// Bytes one queue holds.
    pub max_bytes: usize,
    /// Bytes every queue of this node holds together.
    pub budget_bytes: usize,
    /// Queues this node keeps at once.
    pub max_queues: usize,
    /// An empty queue without consumers is removed after this long unused (`None`: never).
    pub idle_expiry: Option<Duration>,
    /// Unacknowledged deliveries an acknowledging consumer holds at most, whatever its
    /// prefetch window says (0 there means unlimited).
    pub max_unacked: usize,
    /// What those deliveries weigh at most: past it the consumer gets nothing more until it
    /// ACKs (one message may take it past, so a message larger than the bound still goes).
    pub max_unacked_bytes: usize,
}

impl QueueLimits {
    /// Generous bounds for tests of other things.
    #[cfg(test)]
    pub fn counting(max_messages: usize) -> Self {
        Self {
            max_messages,
            max_bytes: usize::MAX,
            budget_bytes: usize::MAX,
            max_queues: usize::MAX,
            idle_expiry: None,
            max_unacked: usize::MAX,
            max_unacked_bytes: usize::MAX,
        }
    }
}

impl From<&Limits> for QueueLimits {
    fn from(limits: &Limits) -> Self {
        Self {
            max_messages: limits.queue_max_messages,
            max_bytes: limits.queue_max_bytes,
            budget_bytes: limits.queue_budget_bytes,
            max_queues: limits.max_queues,
            idle_expiry: (!limits.queue_idle_expiry.is_zero()).then_some(limits.queue_idle_expiry),
            max_unacked: limits.max_unacked,
            max_unacked_bytes: limits.max_unacked_bytes,
        }
    }
}

/// Bytes held by every queue of a node, against the node's budget.
#[derive(Debug)]
struct Budget {
    held: AtomicUsize,
    max: usize,
}

impl Budget {
    /// Takes `bytes` from the budget, or nothing when they do not fit.
    fn take(&self, bytes: usize) -> bool {
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                held.checked_add(bytes).filter(|total| *total <= self.max)
            })
            .is_ok()
    }

    /// Takes `bytes` whatever the bound: messages coming back (redelivery) were admitted once.
    fn force(&self, bytes: usize) {
        self.held.fetch_add(bytes, Ordering::AcqRel);
    }

    fn give(&self, bytes: usize) {
        self.held.fetch_sub(bytes, Ordering::AcqRel);
    }
}

/// Hears what a queue's consumers consumed for good (ACKed, or written to an auto-ack
/// consumer): cluster mode acknowledges it in the queue's shared stream.
pub trait Consumption: Send + Sync + std::fmt::Debug {
    fn consumed(&self, queue: &str, ids: &[u64]);
}

/// This node's queues by name.
#[derive(Debug)]
pub struct Queues {
    queues: DashMap<String, Arc<Queue>>,
    limits: QueueLimits,
    budget: Arc<Budget>,
    consumption: Arc<dyn Consumption>,
}

impl Queues {
    pub fn new(limits: QueueLimits, consumption: Arc<dyn Consumption>) -> Self {
        Self {
            queues: DashMap::new(),
            budget: Arc::new(Budget {
                held: AtomicUsize::new(0),
                max: limits.budget_bytes,
            }),
            limits,
            consumption,
        }
    }

    /// The queue named `name`, created on first use unless this node keeps its maximum of
    /// queues already.
    pub fn get(&self, name: &str) -> Result<Arc<Queue>, QueueFull> {
        if let Some(q) = self.queues.get(name) {
            return Ok(Arc::clone(q.value()));
        }
        // Checked before the entry is taken (a shard lock): the count may overshoot by the
        // queues being created at this very instant, never by more.
        let max = self.limits.max_queues;
        if self.queues.len() >= max {
            return Err(QueueFull::TooManyQueues(max));
        }
        let queue = self.queues.entry(name.to_string()).or_insert_with(|| {
            Arc::new(Queue {
                name: Arc::from(name),
                limits: self.limits,
                budget: Arc::clone(&self.budget),
                state: Mutex::new(State::new()),
                consumption: Arc::clone(&self.consumption),
            })
        });
        Ok(Arc::clone(queue.value()))
    }

    /// Every queue this node has seen.
    pub fn all(&self) -> Vec<Arc<Queue>> {
        self.queues.iter().map(|q| Arc::clone(q.value())).collect()
    }

    /// Removes the queues idle for the expiry (no message, no consumer, nobody holding them:
    /// no session subscribed, no delivery out that may come back); their memory is freed.
    /// Returns their names.
    pub fn expire(&self, now: Instant) -> Vec<Arc<str>> {
        let Some(expiry) = self.limits.idle_expiry else {
            return Vec::new();
        };
        let mut expired = Vec::new();
        // Under the shard's write lock nobody can take a new handle from the map, so a count
        // of one (the map's) stays one while the queue goes.
        self.queues.retain(|_, queue| {
            let keep = Arc::strong_count(queue) > 1 || !queue.idle_for(now, expiry);
            if !keep {
                expired.push(Arc::clone(&queue.name));
            }
            keep
        });
        expired
    }
}

#[derive(Debug)]
pub struct Queue {
    pub name: Arc<str>,
    limits: QueueLimits,
    budget: Arc<Budget>,
    state: Mutex<State>,
    consumption: Arc<dyn Consumption>,
}

impl Queue {
    /// Empty, without consumers, and unused for `expiry`.
    fn idle_for(&self, now: Instant, expiry: Duration) -> bool {
        let state = self.state.lock();
        state.messages.is_empty()
            && state.consumers.is_empty()
            && now.saturating_duration_since(state.used) >= expiry
    }

    /// The queue was used (a SEND that went to the queue's shared stream, in a cluster): its
    /// idle time starts again.
    pub fn touch(&self) {
        self.state.lock().used = Instant::now();
    }

    /// These messages are consumed for good (no redelivery possible any more).
    pub fn consumed(&self, ids: &[u64]) {
        if !ids.is_empty() {
            self.consumption.consumed(&self.name, ids);
        }
    }

    /// Some consumer has room and nothing waits here: the cluster reader may fetch more.
    pub fn wants_more(&self) -> bool {
        let state = self.state.lock();
        state.messages.is_empty() && state.consumers.iter().any(|c| c.has_room(&self.limits))
    }

    /// With no consumer left, everything waiting here (for the cluster to hand back to the
    /// shared stream, where other nodes' consumers can take it).
    pub fn take_orphans(&self) -> Vec<Arc<Message>> {
        let mut state = self.state.lock();
        if !state.consumers.is_empty() {
            return Vec::new();
        }
        self.budget.give(std::mem::take(&mut state.bytes));
        state.messages.drain(..).map(|e| e.message).collect()
    }

    /// Takes a SEND's message, or refuses it at the queue's bound in messages or bytes, or the
    /// node's budget.
    pub fn enqueue(self: &Arc<Self>, message: Arc<Message>) -> Result<(), QueueFull> {
        let mut state = self.state.lock();
        state.used = Instant::now();
        let QueueLimits {
            max_messages,
            max_bytes,
            budget_bytes,
            ..
        } = self.limits;
        if state.messages.len() >= max_messages {
            return Err(QueueFull::Messages(max_messages));
        }
        let weight = message.weight();
        if state.bytes + weight > max_bytes {
            return Err(QueueFull::Bytes(max_bytes));
        }
        if !self.budget.take(weight) {
            return Err(QueueFull::Budget(budget_bytes));
        }
        state.bytes += weight;
        state.messages.push_back(Entry {
            message,
            redelivered: false,
        });
        self.dispatch(&mut state);
        Ok(())
    }

    pub fn add_consumer(
        self: &Arc<Self>,
        session: Arc<SessionHandle>,
        subscription: Arc<str>,
        prefetch: u32,
        tracks_acks: bool,
    ) {
        let mut state = self.state.lock();
        state.used = Instant::now();
        state.consumers.push(Consumer {
            session,
            subscription,
            prefetch,
            tracks_acks,
            in_flight: 0,
            in_flight_bytes: 0,
        });
        self.dispatch(&mut state);
    }

    pub fn remove_consumer(&self, session: u64, subscription: &str) {
        let mut state = self.state.lock();
        state.used = Instant::now();
        state
            .consumers
            .retain(|c| !(c.session.id == session && &*c.subscription == subscription));
    }

    /// `count` deliveries weighing `bytes` to this consumer were acknowledged: its window
    /// opens.
    pub fn settle(self: &Arc<Self>, session: u64, subscription: &str, count: u32, bytes: usize) {
        let mut state = self.state.lock();
        if let Some(c) = state
            .consumers
            .iter_mut()
            .find(|c| c.session.id == session && &*c.subscription == subscription)
        {
            c.release(count, bytes);
        }
        self.dispatch(&mut state);
    }

    /// Puts messages back at the head, in their original order, for redelivery. `settle` is the
    /// consumer whose in-flight count they leave, if it is still subscribed.
    pub fn requeue(
        self: &Arc<Self>,
        messages: Vec<(Arc<Message>, bool)>,
        settle: Option<(u64, &str)>,
    ) {
        let mut state = self.state.lock();
        if let Some((session, subscription)) = settle
            && let Some(c) = state
                .consumers
                .iter_mut()
                .find(|c| c.session.id == session && &*c.subscription == subscription)
        {
            let bytes = messages.iter().map(|(m, _)| m.weight()).sum();
            c.release(messages.len() as u32, bytes);
        }
        for (message, redelivered) in messages.into_iter().rev() {
            self.hold_again(&mut state, &message);
            state.messages.push_front(Entry {
                message,
                redelivered,
            });
        }
        self.dispatch(&mut state);
    }

    /// Counts a message coming back (redelivery, a cluster read) without refusing it: it was
    /// admitted once, and refusing would lose it. Bounded still, by what was admitted.
    fn hold_again(&self, state: &mut State, message: &Message) {
        let weight = message.weight();
        state.bytes += weight;
        self.budget.force(weight);
    }

    /// Hands waiting messages to consumers with room, round-robin. A consumer whose outbox
    /// refuses (closed or overflowing) is dropped from the rotation; its session is ending and
    /// will requeue what it held.
    fn dispatch(self: &Arc<Self>, state: &mut State) {
        while !state.messages.is_empty() && !state.consumers.is_empty() {
            let n = state.consumers.len();
            let limits = &self.limits;
            let Some(offset) =
                (0..n).find(|i| state.consumers[(state.next + i) % n].has_room(limits))
            else {
                return;
            };
            let idx = (state.next + offset) % n;
            let Some(entry) = state.messages.pop_front() else {
                return;
            };
            let weight = entry.message.weight();
            state.bytes -= weight;
            self.budget.give(weight);
            state.used = Instant::now();
            let consumer = &mut state.consumers[idx];
            let delivery = Delivery {
                target: Target::Subscription(SubscriptionId::from(&consumer.subscription)),
                message: entry.message,
                redelivered: entry.redelivered,
                queue: Some(Arc::clone(self) as Arc<dyn ReturnAddress>),
            };
            match consumer
                .session
                .outbox
                .try_push(Outbound::Deliver(delivery))
            {
                Ok(_) => {
                    if consumer.tracks_acks {
                        consumer.in_flight += 1;
                        consumer.in_flight_bytes += weight;
                    }
                    state.next = (idx + 1) % n;
                }
                Err((_, refused)) => {
                    if let Outbound::Deliver(delivery) = refused {
                        self.hold_again(state, &delivery.message);
                        state.messages.push_front(Entry {
                            message: delivery.message,
                            redelivered: delivery.redelivered,
                        });
                    }
                    state.consumers.remove(idx);
                    if state.next >= state.consumers.len() {
                        state.next = 0;
                    }
                }
            }
        }
    }
}

impl ReturnAddress for Queue {
    fn consumed(&self, ids: &[u64]) {
        Queue::consumed(self, ids);
    }

    fn give_back(self: Arc<Self>, messages: Vec<(Arc<Message>, bool)>) {
        self.requeue(messages, None);
    }
}
