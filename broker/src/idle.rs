//! Per-key state that stops mattering once left alone long enough (a user's rate bucket
//! refilled to full, a typing indicator past its coalescing window): its owner guarantees that
//! an idle entry means the same as no entry, so idle entries are evicted. Without that, every
//! user who ever sent a request would keep an entry for the life of the process.
//!
//! Eviction is a sweep with a bound on its work: keys wait in a queue in the order they were
//! created (or last found busy), so a sweep looks only at the entries that may be due, oldest
//! first, never at the whole map. One task sweeps a map; any task may use it.

use std::borrow::Borrow;
use std::collections::VecDeque;
use std::hash::Hash;
use std::time::Duration;

use dashmap::DashMap;
use parking_lot::Mutex;
use tokio::time::Instant;

/// An idle time that never comes (a process does not run for a century).
const NEVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

#[derive(Debug)]
pub struct IdleMap<K: Eq + Hash, V> {
    /// Each value with when it was last used.
    entries: DashMap<K, (V, Instant)>,
    /// Every key of `entries` once, with when it may be idle: roughly oldest first (a key
    /// found busy goes to the back, due when it will be idle if left alone from then).
    due: Mutex<VecDeque<(Instant, K)>>,
    idle: Duration,
}

impl<K: Eq + Hash + Clone, V> IdleMap<K, V> {
    /// A map whose entries are evicted once unused for `idle`.
    pub fn new(idle: Duration) -> Self {
        Self {
            entries: DashMap::new(),
            due: Mutex::new(VecDeque::new()),
            // Beyond a century is never in practice, and `Instant + idle` must not overflow.
            idle: idle.min(NEVER),
        }
    }

    /// A copy of `key`'s value (`None` when absent or evicted). Reading is not a use.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        self.entries.get(key).map(|entry| entry.0.clone())
    }

    /// Sets `key`'s value, used `now`.
    pub fn insert(&self, key: K, value: V, now: Instant) {
        if self.entries.insert(key.clone(), (value, now)).is_none() {
            self.due.lock().push_back((now + self.idle, key));
        }
    }

    /// Runs `f` on `key`'s value, created with `new` when absent; used `now`.
    pub fn with<Q, R>(
        &self,
        key: &Q,
        now: Instant,
        new: impl FnOnce() -> V,
        f: impl FnOnce(&mut V) -> R,
    ) -> R
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        if let Some(mut entry) = self.entries.get_mut(key) {
            entry.1 = now;
            return f(&mut entry.0);
        }
        let owned = key.to_owned();
        let mut created = false;
        let result = {
            let mut entry = self.entries.entry(owned.clone()).or_insert_with(|| {
                created = true;
                (new(), now)
            });
            entry.1 = now;
            f(&mut entry.0)
        };
        // Queued after the entry's lock is released: no lock is taken while holding another.
        if created {
            self.due.lock().push_back((now + self.idle, owned));
        }
        result
    }

    /// Evicts entries unused for the idle time, looking at no more than `max` of them.
    /// Returns how many it evicted.
    pub fn sweep(&self, now: Instant, max: usize) -> usize {
        let mut evicted = 0;
        for _ in 0..max {
            let next = {
                let mut due = self.due.lock();
                match due.front() {
                    Some((at, _)) if *at <= now => due.pop_front().map(|(_, key)| key),
                    _ => None,
                }
            };
            let Some(key) = next else { break };
            let idle =
                |_: &K, (_, used): &(V, Instant)| now.saturating_duration_since(*used) >= self.idle;
            if self.entries.remove_if(&key, idle).is_some() {
                evicted += 1;
                continue;
            }
            // Used since it was queued: due again once idle from its last use.
            let used = self.entries.get(&key).map(|entry| entry.1);
            if let Some(used) = used {
                self.due.lock().push_back((used + self.idle, key));
            }
        }
        evicted
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: Duration = Duration::from_secs(10);

    #[tokio::test(start_paused = true)]
    async fn idle_entries_are_evicted_and_busy_ones_kept() {
        let map: IdleMap<String, u32> = IdleMap::new(IDLE);
        map.with("ann", Instant::now(), || 0, |v| *v += 1);
        map.insert("bob".to_string(), 7, Instant::now());
        tokio::time::advance(Duration::from_secs(6)).await;
        map.with("ann", Instant::now(), || 0, |v| *v += 1);
        assert_eq!(map.sweep(Instant::now(), 100), 0, "nothing idle yet");
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(map.sweep(Instant::now(), 100), 1, "bob idle for 11 s");
        assert_eq!(map.get("bob"), None);
        assert_eq!(map.get("ann"), Some(2), "ann used 5 s ago");
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(map.sweep(Instant::now(), 100), 1);
        assert!(map.is_empty());
        assert!(map.due.lock().is_empty(), "no key left behind in the queue");
    }

    #[tokio::test(start_paused = true)]
    async fn a_sweep_does_bounded_work_and_the_next_one_continues() {
        let map: IdleMap<u32, ()> = IdleMap::new(IDLE);
        for key in 0..10 {
            map.insert(key, (), Instant::now());
        }
        tokio::time::advance(IDLE).await;
        assert_eq!(map.sweep(Instant::now(), 4), 4);
        assert_eq!(map.len(), 6);
        assert_eq!(map.sweep(Instant::now(), 100), 6);
        assert!(map.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn an_evicted_key_used_again_starts_afresh() {
        let map: IdleMap<String, u32> = IdleMap::new(IDLE);
        map.with("ann", Instant::now(), || 5, |v| *v -= 1);
        tokio::time::advance(IDLE).await;
        assert_eq!(map.sweep(Instant::now(), 100), 1);
        assert_eq!(map.with("ann", Instant::now(), || 5, |v| *v), 5);
        assert_eq!(map.due.lock().len(), 1);
    }
}
