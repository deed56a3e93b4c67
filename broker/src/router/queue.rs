//! A `/queue` destination: competing consumers with round-robin dispatch, prefetch windows,
//! and redelivery of what a consumer NACKs or leaves unacknowledged.
//!
//! Lock order: a queue's mutex may be held while pushing into a session's outbox (queue →
//! outbox); a session never takes a queue lock while holding its outbox lock.

use std::collections::VecDeque;
use std::sync::Arc;

use dashmap::DashMap;
use parking_lot::Mutex;

use crate::handle::SessionHandle;
use crate::message::{Delivery, Message, ReturnAddress, Target};
use crate::outbox::Outbound;

#[derive(Debug)]
struct Consumer {
    session: Arc<SessionHandle>,
    subscription: Arc<str>,
    /// Unacknowledged deliveries allowed at once; 0 = unlimited.
    prefetch: u32,
    /// Auto-ack consumers settle on write; they are never counted in flight.
    tracks_acks: bool,
    in_flight: u32,
}

impl Consumer {
    fn has_room(&self) -> bool {
        !self.tracks_acks || self.prefetch == 0 || self.in_flight < self.prefetch
    }
}

#[derive(Debug)]
struct Entry {
    message: Arc<Message>,
    redelivered: bool,
}

#[derive(Debug, Default)]
struct State {
    messages: VecDeque<Entry>,
    consumers: Vec<Consumer>,
    next: usize,
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
    max_messages: usize,
    consumption: Arc<dyn Consumption>,
}

impl Queues {
    pub fn new(max_messages: usize, consumption: Arc<dyn Consumption>) -> Self {
        Self {
            queues: DashMap::new(),
            max_messages,
            consumption,
        }
    }

    /// The queue named `name`, created on first use.
    pub fn get(&self, name: &str) -> Arc<Queue> {
        if let Some(q) = self.queues.get(name) {
            return Arc::clone(q.value());
        }
        let queue = self.queues.entry(name.to_string()).or_insert_with(|| {
            Arc::new(Queue::new(
                name,
                self.max_messages,
                Arc::clone(&self.consumption),
            ))
        });
        Arc::clone(queue.value())
    }

    /// Every queue this node has seen.
    pub fn all(&self) -> Vec<Arc<Queue>> {
        self.queues.iter().map(|q| Arc::clone(q.value())).collect()
    }
}

#[derive(Debug)]
pub struct Queue {
    pub name: Arc<str>,
    max_messages: usize,
    state: Mutex<State>,
    consumption: Arc<dyn Consumption>,
}

/// The queue is at its bound; the message was not taken.
#[derive(Debug)]
pub struct QueueFull(pub usize);

impl Queue {
    pub fn new(name: &str, max_messages: usize, consumption: Arc<dyn Consumption>) -> Self {
        Self {
            name: Arc::from(name),
            max_messages,
            state: Mutex::new(State::default()),
            consumption,
        }
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
        state.messages.is_empty() && state.consumers.iter().any(Consumer::has_room)
    }

    /// With no consumer left, everything waiting here (for the cluster to hand back to the
    /// shared stream, where other nodes' consumers can take it).
    pub fn take_orphans(&self) -> Vec<Arc<Message>> {
        let mut state = self.state.lock();
        if !state.consumers.is_empty() {
            return Vec::new();
        }
        state.messages.drain(..).map(|e| e.message).collect()
    }

    pub fn enqueue(self: &Arc<Self>, message: Arc<Message>) -> Result<(), QueueFull> {
        let mut state = self.state.lock();
        if state.messages.len() >= self.max_messages {
            return Err(QueueFull(self.max_messages));
        }
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
        state.consumers.push(Consumer {
            session,
            subscription,
            prefetch,
            tracks_acks,
            in_flight: 0,
        });
        self.dispatch(&mut state);
    }

    pub fn remove_consumer(&self, session: u64, subscription: &str) {
        let mut state = self.state.lock();
        state
            .consumers
            .retain(|c| !(c.session.id == session && &*c.subscription == subscription));
    }

    /// `count` deliveries to this consumer were acknowledged: its window opens.
    pub fn settle(self: &Arc<Self>, session: u64, subscription: &str, count: u32) {
        let mut state = self.state.lock();
        if let Some(c) = state
            .consumers
            .iter_mut()
            .find(|c| c.session.id == session && &*c.subscription == subscription)
        {
            c.in_flight = c.in_flight.saturating_sub(count);
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
            c.in_flight = c.in_flight.saturating_sub(messages.len() as u32);
        }
        for (message, redelivered) in messages.into_iter().rev() {
            state.messages.push_front(Entry {
                message,
                redelivered,
            });
        }
        self.dispatch(&mut state);
    }

    /// Hands waiting messages to consumers with room, round-robin. A consumer whose outbox
    /// refuses (closed or overflowing) is dropped from the rotation; its session is ending and
    /// will requeue what it held.
    fn dispatch(self: &Arc<Self>, state: &mut State) {
        while !state.messages.is_empty() && !state.consumers.is_empty() {
            let n = state.consumers.len();
            let Some(offset) = (0..n).find(|i| state.consumers[(state.next + i) % n].has_room())
            else {
                return;
            };
            let idx = (state.next + offset) % n;
            let Some(entry) = state.messages.pop_front() else {
                return;
            };
            let consumer = &mut state.consumers[idx];
            let delivery = Delivery {
                target: Target::Subscription(Arc::clone(&consumer.subscription)),
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
                    }
                    state.next = (idx + 1) % n;
                }
                Err((_, refused)) => {
                    if let Outbound::Deliver(delivery) = refused {
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
