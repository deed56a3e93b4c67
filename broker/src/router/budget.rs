//! The node-wide byte budget over every topic history of this node (`--topic-history-max-bytes`):
//! each rule bounds one topic, but a node with many topics would still hold their sum, so past
//! the budget the oldest message of any history goes first, whichever topic it is in.
//!
//! "Oldest" is the order of appends, kept in one queue of (ring, offset). A ring's own bounds
//! remove messages too, which leaves their entries here stale: they are skipped when popped,
//! and the queue is compacted when stale entries outnumber live ones, so it stays within a
//! small multiple of the messages actually held.
//!
//! Lock order: a ring's lock, then this queue's (an append records itself while its ring is
//! locked); eviction takes this queue's lock alone, releases it, then locks one ring at a time.

use std::collections::VecDeque;
use std::sync::Weak;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;

/// Stale entries the queue may carry beyond twice the live ones before it is compacted (a
/// floor, so small nodes do not compact on every trim).
const COMPACT_SLACK: usize = 1024;

/// A ring as the budget sees it.
pub trait Held {
    /// Removes message `offset` if the ring still holds it (telling the budget it was
    /// [`Budget::removed`]); whether it did.
    fn evict(&self, offset: u64) -> bool;
    /// Whether the ring still holds message `offset`.
    fn holds(&self, offset: u64) -> bool;
}

/// The budget of rings of type `R`, each holding messages by offset.
#[derive(Debug)]
pub struct Budget<R> {
    max_bytes: usize,
    /// Bytes of messages held by every ring.
    bytes: AtomicUsize,
    /// Messages held by every ring.
    held: AtomicUsize,
    /// Appends, oldest first.
    order: Mutex<VecDeque<(Weak<R>, u64)>>,
}

impl<R: Held> Budget<R> {
    pub fn new(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            bytes: AtomicUsize::new(0),
            held: AtomicUsize::new(0),
            order: Mutex::new(VecDeque::new()),
        }
    }

    /// `ring` now holds message `offset`, weighing `weight` bytes.
    pub fn appended(&self, ring: &Weak<R>, offset: u64, weight: usize) {
        self.bytes.fetch_add(weight, Ordering::AcqRel);
        self.held.fetch_add(1, Ordering::AcqRel);
        self.order.lock().push_back((Weak::clone(ring), offset));
    }

    /// A ring let go of a message weighing `weight` bytes (its own bound, or eviction).
    pub fn removed(&self, weight: usize) {
        self.bytes.fetch_sub(weight, Ordering::AcqRel);
        self.held.fetch_sub(1, Ordering::AcqRel);
    }

    /// Bytes held by every ring now.
    pub fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Acquire)
    }

    /// Evicts the oldest messages while over the budget. Call with no ring locked. How many
    /// were evicted.
    pub fn enforce(&self) -> usize {
        let mut evicted = 0;
        while self.bytes() > self.max_bytes {
            let Some((ring, offset)) = self.order.lock().pop_front() else {
                break;
            };
            if ring.upgrade().is_some_and(|ring| ring.evict(offset)) {
                evicted += 1;
            }
        }
        self.compact();
        evicted
    }

    /// Drops stale entries once they outnumber live ones. Call with no ring locked.
    fn compact(&self) {
        let held = self.held.load(Ordering::Acquire);
        let taken = {
            let mut order = self.order.lock();
            if order.len() <= 2 * held + COMPACT_SLACK {
                return;
            }
            std::mem::take(&mut *order)
        };
        let kept: VecDeque<_> = taken
            .into_iter()
            .filter(|(ring, offset)| ring.upgrade().is_some_and(|ring| ring.holds(*offset)))
            .collect();
        // Appends made meanwhile are newer than every kept entry.
        let mut order = self.order.lock();
        let newer = std::mem::replace(&mut *order, kept);
        order.extend(newer);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// A ring: the offsets it holds, oldest first, each weighing 10 bytes.
    #[derive(Default)]
    struct Ring {
        offsets: Mutex<VecDeque<u64>>,
        budget: std::sync::OnceLock<Arc<Budget<Ring>>>,
    }

    impl Held for Ring {
        fn evict(&self, offset: u64) -> bool {
            let mut offsets = self.offsets.lock();
            if offsets.front() != Some(&offset) {
                return false;
            }
            offsets.pop_front();
            self.budget.get().expect("set").removed(10);
            true
        }
        fn holds(&self, offset: u64) -> bool {
            self.offsets.lock().contains(&offset)
        }
    }

    fn ring(budget: &Arc<Budget<Ring>>) -> Arc<Ring> {
        let ring = Arc::new(Ring::default());
        let _ = ring.budget.set(Arc::clone(budget));
        ring
    }

    fn append(budget: &Budget<Ring>, ring: &Arc<Ring>, offset: u64) {
        ring.offsets.lock().push_back(offset);
        budget.appended(&Arc::downgrade(ring), offset, 10);
    }

    fn offsets(ring: &Ring) -> Vec<u64> {
        ring.offsets.lock().iter().copied().collect()
    }

    #[test]
    fn over_the_budget_the_oldest_of_any_ring_goes_first() {
        let budget = Arc::new(Budget::new(35));
        let (a, b) = (ring(&budget), ring(&budget));
        append(&budget, &a, 1);
        append(&budget, &b, 1);
        append(&budget, &a, 2);
        append(&budget, &b, 2);
        assert_eq!(budget.enforce(), 1, "40 bytes over 35: one goes");
        assert_eq!(offsets(&a), [2], "a's 1 was the oldest");
        assert_eq!(offsets(&b), [1, 2]);
        // b's own bound removed its 1: that entry is stale and skipped.
        b.offsets.lock().pop_front();
        budget.removed(10);
        append(&budget, &a, 3);
        append(&budget, &a, 4);
        assert_eq!(budget.bytes(), 40);
        assert_eq!(budget.enforce(), 1);
        assert_eq!(
            (offsets(&a), offsets(&b)),
            (vec![3, 4], vec![2]),
            "b's 1 (gone by b's own bound) skipped; a's 2 was older than b's 2"
        );
    }

    #[test]
    fn stale_entries_are_compacted_away() {
        let budget = Arc::new(Budget::new(usize::MAX));
        let a = ring(&budget);
        for offset in 1..=5000 {
            append(&budget, &a, offset);
            // The ring's own bound keeps one message.
            if offset > 1 {
                a.offsets.lock().pop_front();
                budget.removed(10);
            }
            budget.enforce();
        }
        assert!(budget.order.lock().len() <= 2 + COMPACT_SLACK + 1);
        assert_eq!(budget.bytes(), 10);
    }
}
