//! Topic history: per exact topic name, a bounded ring of its recent messages, each with an
//! `offset` (1, 2, 3, ... without gaps) counted within the ring's `epoch`, so a subscriber that
//! lost its connection can SUBSCRIBE again from the last offset it saw and miss nothing.
//!
//! Which topics keep one, and how much, is the `topic_history` setting ([`HistoryRule`]). A
//! ring's lock is held while a publish assigns the offset and fans out, and while a resuming
//! SUBSCRIBE takes its replay and registers (see [`History::with_ring`]): a message is either
//! in the replay or delivered live to the new subscription, never both, never neither.
//!
//! Epochs: the process draws a random number at start and numbers the rings it creates, so a
//! restart, or a ring dropped when idle and made again, is a new epoch, and an offset of an old
//! one is never taken for a position in the new one. In a cluster the rings live in Redis,
//! shared by every node ([`History::shared`], `shared.rs`); the rules are the same.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use parking_lot::Mutex;

use super::budget::{Budget, Held};
pub use super::position::Position;
use super::shared::SharedHistory;
use super::topic::matches;
use crate::config::HistoryRule;
use crate::message::Message;

/// The histories of this node's topics.
#[derive(Debug)]
pub struct History {
    rules: Vec<HistoryRule>,
    /// Random per process: epochs of this run differ from any other run's.
    process: u64,
    /// Rings made so far: each ring's epoch is `process` and its number.
    made: AtomicU64,
    rings: DashMap<String, Arc<Mutex<Ring>>>,
    /// Cluster mode: the history every node shares; then this node keeps no rings.
    shared: Option<Arc<dyn SharedHistory>>,
    /// The node-wide byte bound over every ring (`--topic-history-max-bytes`).
    budget: Arc<Budget<Mutex<Ring>>>,
}

impl History {
    /// Histories for the topics `rules` name (first match wins; 0 messages is none).
    pub fn new(rules: Vec<HistoryRule>) -> Self {
        Self {
            rules,
            process: rand::random(),
            made: AtomicU64::new(0),
            rings: DashMap::new(),
            shared: None,
            budget: Arc::new(Budget::new(usize::MAX)),
        }
    }

    /// These histories with at most `max_bytes` of messages over all topics: past it the
    /// oldest message of any topic goes first (`budget.rs`).
    pub fn with_max_bytes(self, max_bytes: usize) -> Self {
        Self {
            budget: Arc::new(Budget::new(max_bytes)),
            ..self
        }
    }

    /// Evicts the oldest messages of any topic while all together are over the node-wide
    /// bound, counting them. Called after a publish, with no ring locked.
    pub(super) fn enforce(&self) {
        let evicted = self.budget.enforce();
        if evicted > 0 {
            crate::metrics::get()
                .delivery
                .history_evicted
                .inc_by(evicted as u64);
        }
    }

    /// Histories for the topics `rules` name, kept by `shared` for every node (cluster mode).
    pub fn shared(rules: Vec<HistoryRule>, shared: Arc<dyn SharedHistory>) -> Self {
        Self {
            shared: Some(shared),
            ..Self::new(rules)
        }
    }

    /// The shared history and `name`'s rule, when `name` keeps a history shared by nodes.
    pub(super) fn shared_for(&self, name: &str) -> Option<(&dyn SharedHistory, &HistoryRule)> {
        let shared = self.shared.as_deref()?;
        Some((shared, self.rule_for(name)?))
    }

    /// Whether `/topic/<name>` keeps a history (here or shared by nodes).
    pub(super) fn keeps(&self, name: &str) -> bool {
        self.rule_for(name).is_some()
    }

    /// The rule giving `name` a history, if one does (first match wins; 0 messages is none).
    fn rule_for(&self, name: &str) -> Option<&HistoryRule> {
        let rule = self.rules.iter().find(|r| matches(&r.pattern, name))?;
        (rule.max_messages > 0).then_some(rule)
    }

    /// No topic keeps history.
    pub fn off() -> Self {
        Self::new(Vec::new())
    }

    /// Runs `f` with `name`'s ring locked (`None`: the topic keeps no history). The ring is
    /// made on first use. Everything `f` does is atomic with respect to the topic's publishes.
    pub(super) fn with_ring<R>(&self, name: &str, f: impl FnOnce(Option<&mut Ring>) -> R) -> R {
        if self.rules.is_empty() || self.shared.is_some() {
            return f(None);
        }
        let mut f = Some(f);
        loop {
            let Some(ring) = self.ring(name) else {
                return (f.take().expect("called once"))(None);
            };
            let mut ring = ring.lock();
            // Expiry dropped it between the lookup and the lock: take the one now in the map.
            if ring.dropped {
                continue;
            }
            return (f.take().expect("called once"))(Some(&mut ring));
        }
    }

    fn ring(&self, name: &str) -> Option<Arc<Mutex<Ring>>> {
        if let Some(ring) = self.rings.get(name) {
            return Some(Arc::clone(ring.value()));
        }
        let rule = self.rule_for(name)?;
        let entry = self.rings.entry(name.to_string()).or_insert_with(|| {
            let number = self.made.fetch_add(1, Ordering::Relaxed);
            let epoch: Arc<str> = Arc::from(format!("{:016x}-{number}", self.process));
            let budget = Arc::clone(&self.budget);
            Arc::new_cyclic(|me| Mutex::new(Ring::new(epoch, rule, Weak::clone(me), budget)))
        });
        Some(Arc::clone(entry.value()))
    }

    /// Drops the rings whose every message is older than their age bound (their memory goes
    /// back; a later publish starts a new epoch). How many went.
    pub fn expire(&self, now: Instant) -> usize {
        let before = self.rings.len();
        self.rings.retain(|_, ring| {
            let mut ring = ring.lock();
            ring.trim(now);
            ring.dropped = ring.entries.is_empty();
            !ring.dropped
        });
        before - self.rings.len()
    }

    /// Topics holding history now, and the bytes their messages weigh (for benchmarks and,
    /// later, metrics).
    pub fn footprint(&self) -> (usize, usize) {
        (self.rings.len(), self.budget.bytes())
    }
}

/// One retained message.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    offset: u64,
    pub message: Arc<Message>,
    /// A chat room copy's members: a replay reaches them only, as the live copy did.
    pub members: Option<Arc<[String]>>,
    at: Instant,
    weight: usize,
}

/// One topic's history.
#[derive(Debug)]
pub(super) struct Ring {
    epoch: Arc<str>,
    /// The offset the next message gets; offsets start at 1.
    next: u64,
    entries: VecDeque<Entry>,
    bytes: usize,
    max_messages: usize,
    max_bytes: usize,
    max_age: Duration,
    /// Removed from the map by expiry: whoever still holds it looks again.
    dropped: bool,
    /// Itself, as the budget's queue of appends refers to it.
    me: Weak<Mutex<Ring>>,
    budget: Arc<Budget<Mutex<Ring>>>,
}

impl Ring {
    fn new(
        epoch: Arc<str>,
        rule: &HistoryRule,
        me: Weak<Mutex<Ring>>,
        budget: Arc<Budget<Mutex<Ring>>>,
    ) -> Self {
        Self {
            epoch,
            next: 1,
            entries: VecDeque::new(),
            bytes: 0,
            max_messages: rule.max_messages,
            max_bytes: rule.max_bytes,
            max_age: rule.max_age,
            dropped: false,
            me,
            budget,
        }
    }

    /// Gives `message` the next offset and keeps it: the copy every subscriber gets.
    pub(super) fn append(
        &mut self,
        message: &Message,
        members: Option<&[String]>,
        now: Instant,
    ) -> Arc<Message> {
        let offset = self.next;
        self.next += 1;
        let message = Arc::new(message.positioned(&self.epoch, offset));
        let members: Option<Arc<[String]>> = members.map(Arc::from);
        let weight = message.weight()
            + members
                .as_deref()
                .map_or(0, |m| m.iter().map(|u| u.len() + 24).sum());
        self.bytes += weight;
        self.budget.appended(&self.me, offset, weight);
        self.entries.push_back(Entry {
            offset,
            message: Arc::clone(&message),
            members,
            at: now,
            weight,
        });
        self.trim(now);
        message
    }

    /// The messages after `from`, oldest first; `None` when they cannot all be given: another
    /// epoch, an offset this epoch never reached, or one older than the history still holds.
    pub(super) fn since(&mut self, from: &Position, now: Instant) -> Option<Vec<Entry>> {
        self.trim(now);
        let oldest = self.entries.front().map_or(self.next, |e| e.offset);
        let known = *from.epoch == *self.epoch && from.offset < self.next;
        if !known || from.offset + 1 < oldest {
            return None;
        }
        let skip = usize::try_from(from.offset + 1 - oldest).unwrap_or(usize::MAX);
        Some(self.entries.iter().skip(skip).cloned().collect())
    }

    /// Forgets the oldest messages past any bound. The newest message stays even when it alone
    /// is over the byte bound, so a live subscriber can always resume from its predecessor.
    fn trim(&mut self, now: Instant) {
        while let Some(oldest) = self.entries.front() {
            let over = self.entries.len() > self.max_messages
                || (self.bytes > self.max_bytes && self.entries.len() > 1)
                || now.duration_since(oldest.at) > self.max_age;
            if !over {
                break;
            }
            self.pop_oldest();
        }
    }

    fn pop_oldest(&mut self) {
        if let Some(oldest) = self.entries.pop_front() {
            self.bytes -= oldest.weight;
            self.budget.removed(oldest.weight);
        }
    }
}

impl Held for Mutex<Ring> {
    /// Only the oldest message can go: the budget evicts in append order.
    fn evict(&self, offset: u64) -> bool {
        let mut ring = self.lock();
        if ring.entries.front().is_none_or(|e| e.offset != offset) {
            return false;
        }
        ring.pop_oldest();
        true
    }

    fn holds(&self, offset: u64) -> bool {
        self.lock()
            .entries
            .front()
            .is_some_and(|e| e.offset <= offset)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use stomp_codec::Headers;

    use super::*;

    fn message(body: &'static str) -> Message {
        Message::new(
            1,
            Arc::from("/topic/t"),
            &Headers::default(),
            Bytes::from_static(body.as_bytes()),
        )
    }

    fn offsets<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> Vec<u64> {
        entries.into_iter().map(|e| e.offset).collect()
    }

    #[test]
    fn resume_gives_what_came_after_unless_trimmed_or_another_epoch() {
        let history = History::new(vec!["/topic/t.*=3/1000000/1h".parse().expect("rule")]);
        let now = Instant::now();
        let epoch = history.with_ring("t.a", |ring| {
            let ring = ring.expect("a rule matches");
            for _ in 0..5 {
                ring.append(&message("x"), None, now);
            }
            ring.epoch.to_string()
        });
        let at = |offset| Position {
            epoch: epoch.clone(),
            offset,
        };
        history.with_ring("t.a", |ring| {
            let ring = ring.expect("kept");
            assert_eq!(
                ring.since(&at(3), now).map(|e| offsets(&e)),
                Some(vec![4, 5])
            );
            assert_eq!(
                ring.since(&at(2), now).map(|e| offsets(&e)),
                Some(vec![3, 4, 5])
            );
            assert_eq!(ring.since(&at(5), now).map(|e| offsets(&e)), Some(vec![]));
            assert!(ring.since(&at(1), now).is_none(), "2 was trimmed");
            assert!(ring.since(&at(6), now).is_none(), "never reached");
            let other = Position {
                epoch: "another".into(),
                offset: 4,
            };
            assert!(ring.since(&other, now).is_none());
        });
        assert!(history.with_ring("u.a", |ring| ring.is_none()), "no rule");
    }

    #[test]
    fn an_idle_ring_expires_and_comes_back_under_a_new_epoch() {
        let history = History::new(vec!["/topic/t=10/1000000/1s".parse().expect("rule")]);
        let then = Instant::now();
        let first = history.with_ring("t", |ring| {
            ring.expect("ring").append(&message("x"), None, then)
        });
        assert_eq!(history.expire(then), 0);
        assert_eq!(history.expire(then + Duration::from_secs(2)), 1);
        let second = history.with_ring("t", |ring| {
            ring.expect("ring").append(&message("x"), None, then)
        });
        assert_eq!(first.headers.get("offset"), Some("1"));
        assert_eq!(second.headers.get("offset"), Some("1"));
        assert_ne!(first.headers.get("epoch"), second.headers.get("epoch"));
    }

    #[test]
    fn the_node_wide_bound_evicts_the_oldest_of_any_topic() {
        let rule = "/topic/t.*=100/1000000/1h".parse().expect("rule");
        let history = History::new(vec![rule]).with_max_bytes(3 * 300);
        let now = Instant::now();
        let weight = history.with_ring("t.a", |ring| {
            ring.expect("ring")
                .append(&message("x"), None, now)
                .weight()
        });
        assert!((257..300).contains(&weight), "each message weighs {weight}");
        for name in ["t.b", "t.a", "t.b"] {
            history.with_ring(name, |ring| {
                ring.expect("ring").append(&message("x"), None, now);
            });
            history.enforce();
        }
        let held = |name| history.with_ring(name, |ring| offsets(&ring.expect("ring").entries));
        assert_eq!(held("t.a"), [2], "t.a's first, the oldest of all, went");
        assert_eq!(held("t.b"), [1, 2]);
        assert_eq!(history.footprint().1, 3 * weight);
    }

    #[test]
    fn bytes_bound_keeps_at_least_the_newest() {
        let history = History::new(vec!["/topic/t=10/300/1h".parse().expect("rule")]);
        let now = Instant::now();
        history.with_ring("t", |ring| {
            let ring = ring.expect("ring");
            ring.append(&message("a"), None, now);
            ring.append(&message("b"), None, now);
            assert_eq!(ring.entries.len(), 1, "each weighs over 256 bytes");
        });
    }
}
