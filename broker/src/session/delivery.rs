//! Messages into the session (from its outbox onto the wire) and acknowledgements back out
//! (to the queues that are waiting for them).

use std::sync::Arc;

use stomp_codec::Version;

use super::failure::Failure;
use super::state::{Acks, Session};
use super::subscription::{Registration, Subscription};
use super::wire::Wire;
use crate::app::Settled;
use crate::command::AckRef;
use crate::config::Limits;
use crate::error::StompError;
use crate::message::{Delivery, Message, MessageHead, ReturnAddress, Run, Target};
use crate::outbox::Outbound;
use crate::subscription_id::SubscriptionId;

/// The metrics of one drain's deliveries, counted once when it ends rather than per delivery:
/// at a fan-out's rates a clock read and three shared atomic updates per delivery were about
/// 15 % of the broker's CPU (perf, `fanout --subscribers 100 --rate 0`). Latency is taken from
/// one clock read at the start of the drain, so it ends where the drain began encoding.
pub(super) struct Tally {
    now: std::time::Instant,
    delivered: u64,
    /// From the second delivery on: a drain of one (a chat message) pays no local histogram.
    latency: Option<prometheus::local::LocalHistogram>,
}

impl Tally {
    pub(super) fn new() -> Self {
        Self {
            now: std::time::Instant::now(),
            delivered: 0,
            latency: None,
        }
    }

    fn delivered(&mut self, message: &Message) {
        let histogram = &crate::metrics::get().delivery.delivery_latency;
        let seconds = self
            .now
            .saturating_duration_since(message.accepted)
            .as_secs_f64();
        match (self.delivered, &mut self.latency) {
            (0, _) => histogram.observe(seconds),
            (_, Some(local)) => local.observe(seconds),
            (_, None) => {
                let local = histogram.local();
                local.observe(seconds);
                self.latency = Some(local);
            }
        }
        self.delivered += 1;
    }
}

impl Drop for Tally {
    fn drop(&mut self) {
        if self.delivered > 0 {
            let metrics = crate::metrics::get();
            metrics.delivery.deliveries.inc_by(self.delivered);
            metrics
                .session
                .frames_out(stomp_codec::Command::Message, self.delivered);
        }
        // The local histogram flushes itself when dropped.
    }
}

/// A delivery as the drain meets it: one pushed alone (owned), or one message of a publisher's
/// run (borrowed from the run, which the outbox took for every subscriber at once).
enum Item<'a> {
    Owned(Delivery),
    InRun(&'a SubscriptionId, &'a Arc<Message>),
}

impl Item<'_> {
    fn message(&self) -> &Arc<Message> {
        match self {
            Item::Owned(d) => &d.message,
            Item::InRun(_, message) => message,
        }
    }

    fn redelivered(&self) -> bool {
        matches!(self, Item::Owned(d) if d.redelivered)
    }

    fn queue(&self) -> Option<&Arc<dyn ReturnAddress>> {
        match self {
            Item::Owned(d) => d.queue.as_ref(),
            Item::InRun(..) => None,
        }
    }

    /// As a delivery of its own (held back until the subscription's window opens).
    fn into_delivery(self) -> Delivery {
        match self {
            Item::Owned(d) => d,
            Item::InRun(id, message) => Delivery::to_subscription(id, message),
        }
    }
}

/// Encodes one delivery on `subscription` into the output, recording it as pending when the
/// subscription acknowledges.
fn emit(
    sub: &mut Subscription,
    acks: &mut Acks,
    version: Version,
    wire: &mut Wire,
    item: &Item<'_>,
    tally: &mut Tally,
) {
    let message = item.message();
    tally.delivered(message);
    let tag = sub.ack.tracks_acks().then(|| acks.issue(&sub.id));
    match (tag, item.queue()) {
        (Some(tag), _) => {
            sub.hold_pending(tag, Arc::clone(message));
        }
        // Auto-ack: a queue message is consumed once written.
        (None, Some(queue)) => queue.consumed(&[message.id]),
        (None, None) => {}
    }
    let head = MessageHead {
        subscription: &sub.id,
        destination: sub.destination.as_deref(),
        // 1.0 and 1.1 clients acknowledge by message-id; only 1.2 defines the `ack` header.
        ack: if version == Version::V1_2 { tag } else { None },
        redelivered: item.redelivered(),
    };
    wire.encode(|dst| head.encode(message, version, dst));
}

/// Delivers `item` on `sub`: out now, or into its backlog while its prefetch window is full.
/// A topic's message is held here until ACKed (or until its window opens): counted, and
/// refused past the session's bounds before it goes out. A queue's stays the queue's to bound.
fn deliver_on(
    sub: &mut Subscription,
    acks: &mut Acks,
    limits: &Limits,
    version: Version,
    wire: &mut Wire,
    item: Item<'_>,
    tally: &mut Tally,
) -> Result<(), Failure> {
    let window_full = sub.window_full();
    if sub.queue().is_none() && (window_full || sub.ack.tracks_acks()) {
        acks.hold(item.message());
        held_within(acks, limits)?;
    }
    if window_full {
        sub.hold_back(item.into_delivery());
        if sub.backlog().len() > limits.outbound_max_frames {
            return Err(StompError::SlowConsumer.into());
        }
    } else {
        emit(sub, acks, version, wire, &item, tally);
    }
    Ok(())
}

/// What the session's topic and user subscriptions hold back is within its bounds.
fn held_within(acks: &Acks, limits: &Limits) -> Result<(), Failure> {
    let (messages, bytes) = (acks.held_messages as usize, acks.held_bytes as usize);
    if messages > limits.max_unacked || bytes > limits.max_unacked_bytes {
        return Err(StompError::TooManyUnacked(format!(
            "this session holds {messages} messages ({bytes} bytes) unacknowledged or waiting \
             for a prefetch window on its topic and user subscriptions; the bounds are {} \
             messages and {} bytes: ACK what you received",
            limits.max_unacked, limits.max_unacked_bytes
        ))
        .into());
    }
    Ok(())
}

impl Session {
    /// Moves everything routed to this session onto the wire.
    pub(super) fn drain_outbox(&mut self, wire: &mut Wire) -> Result<(), Failure> {
        let drained = self.handle.outbox.drain();
        crate::metrics::get()
            .delivery
            .outbox_depth
            .observe(drained.frames as f64);
        wire.reserve(drained.bytes);
        let mut tally = Tally::new();
        for item in drained.items {
            match item {
                Outbound::Deliver(delivery) => self.deliver(wire, delivery, &mut tally)?,
                Outbound::Frame(frame) => wire.push(&frame),
                Outbound::Run(id, run) => self.deliver_run(wire, &id, &run, &mut tally)?,
            }
        }
        if drained.overflowed {
            return Err(StompError::SlowConsumer.into());
        }
        Ok(())
    }

    fn deliver(&mut self, wire: &mut Wire, d: Delivery, tally: &mut Tally) -> Result<(), Failure> {
        // The id is borrowed for the lookup, not cloned: a clone of a long id would be two more
        // writes to a count the publisher's core also writes (`subscription_id.rs`).
        let id = match &d.target {
            Target::Subscription(id) => id,
            Target::TempQueue(name) => {
                return self.deliver_reply(wire, name, d.clone(), tally);
            }
            Target::User(name) => {
                let key = crate::router::Router::user_key(self.handle.principal.name(), name);
                let ids: Vec<Arc<str>> = self
                    .subscriptions
                    .iter()
                    .filter(|s| matches!(&s.registration, Registration::User(k) if *k == key))
                    .map(|s| Arc::clone(&s.id))
                    .collect();
                for id in ids {
                    let mut copy = d.clone();
                    copy.target = Target::Subscription(SubscriptionId::from(&id));
                    self.deliver(wire, copy, tally)?;
                }
                return Ok(());
            }
        };
        let Some(sub) = self.subscriptions.get_mut(id.as_str()) else {
            // Unsubscribed while the message was in flight: a queue gets it back.
            if let Some(queue) = d.queue {
                queue.give_back(vec![(d.message, d.redelivered)]);
            }
            return Ok(());
        };
        let limits = &self.broker.config.limits;
        let item = Item::Owned(d);
        let version = wire.version();
        deliver_on(sub, &mut self.acks, limits, version, wire, item, tally)
    }

    /// A publisher's run on one subscription, in order: the subscription is looked up once.
    /// Unsubscribed while the run was in flight: it is dropped, as a topic's messages are.
    fn deliver_run(
        &mut self,
        wire: &mut Wire,
        id: &SubscriptionId,
        run: &Run,
        tally: &mut Tally,
    ) -> Result<(), Failure> {
        let Some(sub) = self.subscriptions.get_mut(id.as_str()) else {
            return Ok(());
        };
        let limits = &self.broker.config.limits;
        let version = wire.version();
        for message in &run.messages {
            let item = Item::InRun(id, message);
            deliver_on(sub, &mut self.acks, limits, version, wire, item, tally)?;
        }
        Ok(())
    }

    /// A reply to one of our `/temp-queue`s: on the explicit subscription to it if there is
    /// one, else with the temp-queue's own name as subscription (RabbitMQ's behaviour).
    fn deliver_reply(
        &mut self,
        wire: &mut Wire,
        name: &str,
        d: Delivery,
        tally: &mut Tally,
    ) -> Result<(), Failure> {
        let destination: Arc<str> = Arc::from(format!("/temp-queue/{name}"));
        let explicit = self
            .subscriptions
            .iter_mut()
            .find(|s| matches!(&s.registration, Registration::TempQueue(n) if n == name));
        match explicit {
            Some(sub) => {
                if sub.ack.tracks_acks() {
                    self.acks.hold(&d.message);
                    held_within(&self.acks, &self.broker.config.limits)?;
                }
                let version = wire.version();
                emit(sub, &mut self.acks, version, wire, &Item::Owned(d), tally);
            }
            None => {
                let head = MessageHead {
                    subscription: &destination,
                    destination: Some(&destination),
                    ack: None,
                    redelivered: false,
                };
                let version = wire.version();
                wire.encode(|dst| head.encode(&d.message, version, dst));
            }
        }
        Ok(())
    }

    /// Finds the subscription and ack tag an ACK/NACK refers to.
    pub(super) fn resolve(&self, target: &AckRef) -> Option<(Arc<str>, u64)> {
        if let Some(tag) = target.id.as_deref().and_then(|id| id.parse::<u64>().ok())
            && let Some(owner) = self.acks.owner.get(&tag)
        {
            return Some((Arc::clone(owner), tag));
        }
        // 1.0/1.1 style: by message-id (also a 1.2 client that put the message-id in `id`).
        let message_id: u64 = target
            .message_id
            .as_deref()
            .or(target.id.as_deref())?
            .parse()
            .ok()?;
        self.subscriptions
            .iter()
            .filter(|s| {
                target
                    .subscription
                    .as_deref()
                    .is_none_or(|want| *s.id == *want)
            })
            .find_map(|s| s.tag_of(message_id).map(|tag| (Arc::clone(&s.id), tag)))
    }

    pub(super) fn acknowledge(
        &mut self,
        wire: &mut Wire,
        target: &AckRef,
        nack: bool,
    ) -> Result<(), StompError> {
        let (id, tag) = self
            .resolve(target)
            .ok_or_else(|| StompError::UnknownAckId(target.describe()))?;
        self.settle(wire, &id, tag, nack);
        Ok(())
    }

    /// ACK/NACK from a committed transaction: the message may have been settled since.
    pub(super) fn settle_if_pending(&mut self, wire: &mut Wire, target: &AckRef, nack: bool) {
        if let Some((id, tag)) = self.resolve(target) {
            self.settle(wire, &id, tag, nack);
        }
    }

    fn settle(&mut self, wire: &mut Wire, id: &Arc<str>, tag: u64, nack: bool) {
        let session = self.handle.id;
        let Some(sub) = self.subscriptions.get_mut(id) else {
            return;
        };
        let settled = sub.settle(tag);
        let held_here = sub.queue().is_none();
        for (t, message) in &settled {
            self.acks.owner.remove(t);
            if held_here {
                self.acks.release(message);
            }
        }
        if let Some(app) = &self.broker.app {
            let ids: Vec<u64> = settled
                .iter()
                .filter(|(_, m)| m.app_ack)
                .map(|(_, m)| m.id)
                .collect();
            if !ids.is_empty() {
                let how = if nack { Settled::Nack } else { Settled::Ack };
                app.settled(&self.handle, how, ids);
            }
        }
        if let Some(queue) = sub.queue() {
            if nack {
                let back = settled.into_iter().map(|(_, m)| (m, true)).collect();
                queue.requeue(back, Some((session, id)));
            } else {
                let ids: Vec<u64> = settled.iter().map(|(_, m)| m.id).collect();
                let bytes = settled.iter().map(|(_, m)| m.weight()).sum();
                queue.consumed(&ids);
                queue.settle(session, id, settled.len() as u32, bytes);
            }
        }
        // A topic NACK discards: there is no one else to give the message to.
        let mut tally = Tally::new();
        while !sub.window_full() {
            let Some(d) = sub.next_waiting() else {
                break;
            };
            // From the backlog to the pending: held all along.
            let item = Item::Owned(d);
            let version = wire.version();
            emit(sub, &mut self.acks, version, wire, &item, &mut tally);
        }
    }

    /// Takes a subscription out of the router and hands its unacknowledged queue messages
    /// back for redelivery.
    pub(super) fn remove_subscription(&mut self, id: &str) -> Option<Subscription> {
        let sub = self.subscriptions.remove(id)?;
        self.handle.record.unsubscribed(id);
        let router = &self.broker.router;
        let session = self.handle.id;
        match &sub.registration {
            Registration::Topic(name) => router.unsubscribe_topic(name, session, id),
            Registration::User(key) => router.unsubscribe_user(key, session, id),
            Registration::TempQueue(_) => {}
            Registration::Queue(queue) => {
                queue.remove_consumer(session, id);
                let back: Vec<_> = sub
                    .pending()
                    .values()
                    .map(|m| (Arc::clone(m), true))
                    .collect();
                if !back.is_empty() {
                    queue.requeue(back, None);
                }
            }
        }
        for tag in sub.pending().keys() {
            self.acks.owner.remove(tag);
        }
        if sub.queue().is_none() {
            let backlog = sub.backlog().iter().map(|d| &d.message);
            for message in sub.pending().values().chain(backlog) {
                self.acks.release(message);
            }
        }
        Some(sub)
    }
}
