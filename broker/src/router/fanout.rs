//! Pushing one message into the outboxes of the subscriptions of a table that match its name:
//! the local end of every publish, never waiting (a full outbox is the session's problem, per
//! [`Priority`] and the slow-consumer policy).
//!
//! A publisher's run of messages to one topic ([`Run`]: the SENDs of one socket read) is fanned
//! out at once ([`fan_out_run`]): the subscriber set is looked up once, and each subscription's
//! outbox takes the whole run in one push. At 1→100 the per-delivery cost was locked
//! instructions (the message's reference count, the outbox's lock and unlock); per run they are
//! paid once per subscriber instead of once per message (docs/benchmarks.md, "Fan-out in runs").

use std::sync::Arc;

use super::topic::{Subscriber, TopicTable};
use crate::message::{Delivery, Message, Run};
use crate::outbox::{Outbound, Pressure};

/// What a fan-out did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FanOut {
    /// Deliveries queued: the outboxes that took the message (for a run, summed over its
    /// messages).
    pub delivered: usize,
    /// Some receiving outbox is past half full: the publisher should slow down.
    pub pressed: bool,
}

impl FanOut {
    /// Adds what another fan-out of the same publish did.
    pub fn add(&mut self, other: FanOut) {
        self.delivered += other.delivered;
        self.pressed |= other.pressed;
    }
}

/// How a fan-out treats a full outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// Counts against the slow-consumer policy.
    Normal,
    /// Worthless late (typing indicators): dropped once an outbox is half full.
    Droppable,
}

/// Which subscriptions of a table a fan-out reaches.
#[derive(Clone, Copy)]
pub enum Select<'a> {
    /// Exact and wildcard subscriptions: a local publish.
    All,
    /// Exact subscriptions only: a peer's copy meant for exact subscriptions (cluster mode:
    /// it came on a topic's own Redis channel).
    Exact,
    /// Wildcard subscriptions whose pattern this accepts: a peer's copy meant for those
    /// patterns only (cluster mode: it came through the glob standing for them).
    Patterns(&'a dyn Fn(&str) -> bool),
}

impl std::fmt::Debug for Select<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Select::All => f.write_str("All"),
            Select::Exact => f.write_str("Exact"),
            Select::Patterns(_) => f.write_str("Patterns(..)"),
        }
    }
}

/// Fans `message` out to local sessions only: the subscriptions of `table` matching `name`
/// that `select` picks, of principals `admit` accepts; returns how many outboxes took it.
pub(super) fn fan_out(
    table: &TopicTable,
    name: &str,
    message: &Arc<Message>,
    select: Select<'_>,
    priority: Priority,
    admit: impl Fn(&str) -> bool,
) -> FanOut {
    let mut outcome = FanOut::default();
    let push = |sub: &Subscriber| {
        if !admit(sub.session.principal.name()) {
            return;
        }
        if let Some(gate) = &sub.gate {
            outcome.delivered += usize::from(gate.pass(message));
            return;
        }
        let item = delivery(sub, message);
        match priority {
            Priority::Normal => {
                if let Ok(pressure) = sub.session.outbox.try_push(item) {
                    outcome.delivered += 1;
                    outcome.pressed |= pressure == Pressure::High;
                }
            }
            Priority::Droppable => {
                outcome.delivered += usize::from(sub.session.outbox.try_push_droppable(item));
            }
        }
    };
    for_each(table, name, select, push);
    outcome
}

/// Fans a run of messages to one topic out to local sessions (a plain publish: every matching
/// subscription, no room members, normal priority), in order per subscription. A subscription
/// resuming from a shared history passes its gate message by message.
pub(super) fn fan_out_run(table: &TopicTable, name: &str, run: &Arc<Run>) -> FanOut {
    let mut outcome = FanOut::default();
    let push = |sub: &Subscriber| {
        if let Some(gate) = &sub.gate {
            for message in &run.messages {
                outcome.delivered += usize::from(gate.pass(message));
            }
            return;
        }
        let (queued, pressure) = sub.session.outbox.try_push_run(&sub.subscription, run);
        outcome.delivered += queued;
        outcome.pressed |= queued > 0 && pressure == Pressure::High;
    };
    for_each(table, name, Select::All, push);
    outcome
}

/// Calls `f` for each subscription of `table` matching `name` that `select` picks.
fn for_each(table: &TopicTable, name: &str, select: Select<'_>, mut f: impl FnMut(&Subscriber)) {
    match select {
        Select::All => table.for_each_match(name, &mut f),
        Select::Exact => table.for_each_exact(name, &mut f),
        Select::Patterns(accept) => table.for_each_pattern(name, accept, &mut f),
    }
}

/// Whether a copy for `members` (`None`: everyone; a chat room copy lists its members)
/// reaches a session of `principal`: live, replayed, on any node.
pub(super) fn admits(members: Option<&[String]>, principal: &str) -> bool {
    members.is_none_or(|m| m.iter().any(|member| member == principal))
}

/// `message` on its way to the subscription `sub`, as a fan-out (or a history replay) sends it.
pub(super) fn delivery(sub: &Subscriber, message: &Arc<Message>) -> Outbound {
    Outbound::Deliver(Delivery::to_subscription(&sub.subscription, message))
}
