//! Fan-out tables: which sessions hold a subscription matching a name.
//!
//! Publishing takes a snapshot (`Arc<[Subscriber]>`) and releases every lock before pushing to
//! subscribers' outboxes, so a publish never holds a lock while touching a session, and
//! subscribe/unsubscribe (rare) pay for copy-on-write instead of publish (hot).

use std::sync::Arc;

use dashmap::DashMap;
use parking_lot::RwLock;

use crate::handle::SessionHandle;
use crate::message::Message;
use crate::subscription_id::SubscriptionId;

/// One subscription of one session.
#[derive(Debug, Clone)]
pub struct Subscriber {
    pub session: Arc<SessionHandle>,
    /// Copied into every delivery: inline when short (`subscription_id.rs`).
    pub subscription: SubscriptionId,
    /// A subscription resuming from a shared history: its live copies pass its gate
    /// (`gate.rs`).
    pub gate: Option<Arc<dyn Pass>>,
}

/// What a subscription's live copies go through before its outbox.
pub trait Pass: Send + Sync + std::fmt::Debug {
    /// Pushes `message` to the subscription, holds it, or drops it as already delivered;
    /// true when pushed or held.
    fn pass(&self, message: &Arc<Message>) -> bool;
}

impl Subscriber {
    fn is(&self, session: u64, subscription: &str) -> bool {
        self.session.id == session && self.subscription == *subscription
    }
}

/// Wildcard subscriptions with their patterns, replaced whole on change (copy-on-write).
type Patterns = Arc<[(Arc<str>, Subscriber)]>;

/// Subscriptions keyed by name, with RabbitMQ-style wildcard patterns when enabled.
#[derive(Debug)]
pub struct TopicTable {
    /// Keyed by `Box<str>`, not `String`: 8 B less per slot of a table that holds a slot
    /// per user (`/user` destinations), and over half again as many slots as keys.
    exact: DashMap<Box<str>, Arc<[Subscriber]>>,
    patterns: RwLock<Patterns>,
    wildcards: bool,
}

impl TopicTable {
    /// `wildcards: false` treats `*` and `#` literally (used for `/user` destinations).
    pub fn new(wildcards: bool) -> Self {
        Self {
            exact: DashMap::new(),
            patterns: RwLock::new(Arc::from(Vec::new())),
            wildcards,
        }
    }

    pub fn is_pattern(&self, name: &str) -> bool {
        self.wildcards && name.split('.').any(|s| s == "*" || s == "#")
    }

    pub fn subscribe(&self, name: &str, subscriber: Subscriber) {
        if self.is_pattern(name) {
            let mut patterns = self.patterns.write();
            let mut next: Vec<_> = patterns.iter().cloned().collect();
            next.push((Arc::from(name), subscriber));
            *patterns = Arc::from(next);
        } else {
            let mut entry = self
                .exact
                .entry(Box::from(name))
                .or_insert_with(|| Arc::from(Vec::new()));
            let mut next: Vec<_> = entry.iter().cloned().collect();
            next.push(subscriber);
            *entry = Arc::from(next);
        }
    }

    pub fn unsubscribe(&self, name: &str, session: u64, subscription: &str) {
        if self.is_pattern(name) {
            let mut patterns = self.patterns.write();
            let next: Vec<_> = patterns
                .iter()
                .filter(|(p, s)| !(&**p == name && s.is(session, subscription)))
                .cloned()
                .collect();
            *patterns = Arc::from(next);
        } else {
            // Remove the key with its last subscriber, so tables track live interest only.
            self.exact.remove_if_mut(name, |_, subs| {
                let next: Vec<_> = subs
                    .iter()
                    .filter(|s| !s.is(session, subscription))
                    .cloned()
                    .collect();
                *subs = Arc::from(next);
                subs.is_empty()
            });
        }
    }

    /// Every subscriber whose subscription matches `name`, as snapshots taken without holding
    /// any lock afterwards. Calls `f` once per matching subscription.
    pub fn for_each_match(&self, name: &str, mut f: impl FnMut(&Subscriber)) {
        self.for_each_exact(name, &mut f);
        self.for_each_pattern(name, |_| true, f);
    }

    /// Subscribers of exactly `name` (not via a wildcard).
    pub fn for_each_exact(&self, name: &str, f: impl FnMut(&Subscriber)) {
        let exact = self.exact.get(name).map(|e| Arc::clone(e.value()));
        if let Some(subs) = exact {
            subs.iter().for_each(f);
        }
    }

    /// Wildcard subscribers matching `name` whose pattern `select` accepts (cluster mode
    /// delivers each glob's copy only to the patterns that glob stands for).
    pub fn for_each_pattern(
        &self,
        name: &str,
        select: impl Fn(&str) -> bool,
        mut f: impl FnMut(&Subscriber),
    ) {
        if !self.wildcards {
            return;
        }
        let patterns = Arc::clone(&self.patterns.read());
        for (pattern, sub) in patterns.iter() {
            if select(pattern) && matches(pattern, name) {
                f(sub);
            }
        }
    }
}

/// RabbitMQ topic matching: segments split on `.`, `*` is exactly one segment, `#` is zero or
/// more.
pub fn matches(pattern: &str, name: &str) -> bool {
    let pattern: Vec<&str> = pattern.split('.').collect();
    let name: Vec<&str> = name.split('.').collect();
    matches_segments(&pattern, &name)
}

/// Dynamic programming over (pattern segment, name prefix): linear in their product, so a
/// hostile pattern like `#.#.#.#` cannot make matching exponential.
fn matches_segments(pattern: &[&str], name: &[&str]) -> bool {
    let mut reach = vec![false; name.len() + 1];
    reach[0] = true;
    for &seg in pattern {
        let mut next = vec![false; name.len() + 1];
        if seg == "#" {
            let mut any = false;
            for (j, slot) in next.iter_mut().enumerate() {
                any |= reach[j];
                *slot = any;
            }
        } else {
            for j in 1..=name.len() {
                next[j] = reach[j - 1] && (seg == "*" || seg == name[j - 1]);
            }
        }
        reach = next;
    }
    reach[name.len()]
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn star_is_one_segment_hash_is_any() {
        assert!(matches("a.*", "a.b"));
        assert!(!matches("a.*", "a.b.c"));
        assert!(!matches("a.*", "a"));
        assert!(matches("a.#", "a"));
        assert!(matches("a.#", "a.b.c"));
        assert!(matches("#", "x.y"));
        assert!(matches("#.z", "x.y.z"));
        assert!(matches("*.b.#", "a.b"));
        assert!(!matches("*.b.#", "a.c.b"));
        assert!(matches("a.b", "a.b"));
        assert!(!matches("a.b", "a.bb"));
    }
}
