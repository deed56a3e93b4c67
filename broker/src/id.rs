//! Snowflake-style message ids: 64 bits of (milliseconds since the Stompbox epoch, node id,
//! sequence), so ids are unique across nodes, sortable by time, and strictly increasing per node.
//!
//! Only the server's clock orders messages; a clock that steps backwards never makes an id go
//! backwards, because the generator keeps issuing from its last timestamp until the clock
//! catches up.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::clock::now_ms;

/// 2025-01-01T00:00:00Z: 41 bits of milliseconds from here last until the year 2094.
const EPOCH_MS: u64 = 1_735_689_600_000;
/// 10 bits of node id: 1,024 nodes, far beyond the design's fleet.
const NODE_BITS: u32 = 10;
/// 12 bits of sequence: 4,096 ids per millisecond per node before borrowing the next ms.
const SEQ_BITS: u32 = 12;
pub const MAX_NODE_ID: u16 = (1 << NODE_BITS) - 1;

#[derive(Debug)]
pub struct IdGenerator {
    node: u64,
    /// The first id this generator can issue, node bits cleared: (ms at creation << 22). Ids
    /// of this node id below it were issued by an earlier process (before a restart).
    floor: u64,
    /// The last id issued, with the node bits cleared: (ms << 22) | seq.
    last: AtomicU64,
}

impl IdGenerator {
    pub fn new(node_id: u16) -> Self {
        Self {
            node: u64::from(node_id.min(MAX_NODE_ID)),
            floor: now_ms().saturating_sub(EPOCH_MS) << (NODE_BITS + SEQ_BITS),
            last: AtomicU64::new(0),
        }
    }

    /// Whether `id` came from this generator: this node id, and not before it was created. A
    /// node restarted on the same id does not claim its previous life's ids (unless the
    /// clock stepped back across the restart, which ids cannot tell).
    pub fn issued(&self, id: u64) -> bool {
        let node_mask = u64::from(MAX_NODE_ID) << SEQ_BITS;
        (id & node_mask) >> SEQ_BITS == self.node && id & !node_mask >= self.floor
    }

    /// The next id: lock-free; when more than 4,096 ids are taken in one millisecond, the
    /// sequence carries into the timestamp, which keeps ids increasing at the cost of running
    /// slightly ahead of the wall clock during the burst.
    pub fn next_id(&self) -> u64 {
        let now = now_ms().saturating_sub(EPOCH_MS) << (NODE_BITS + SEQ_BITS);
        let mut prev = self.last.load(Ordering::Relaxed);
        loop {
            let candidate = if now > prev { now } else { prev + 1 };
            // Skip over the node bits: the sequence lives in the low 12 bits only.
            let candidate = if candidate & (((1 << NODE_BITS) - 1) << SEQ_BITS) != 0 {
                ((candidate >> (NODE_BITS + SEQ_BITS)) + 1) << (NODE_BITS + SEQ_BITS)
            } else {
                candidate
            };
            match self.last.compare_exchange_weak(
                prev,
                candidate,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return candidate | (self.node << SEQ_BITS),
                Err(actual) => prev = actual,
            }
        }
    }
}

/// Milliseconds since the Unix epoch of an id (for logs and the chat layer's timestamps).
pub fn timestamp_ms(id: u64) -> u64 {
    (id >> (NODE_BITS + SEQ_BITS)) + EPOCH_MS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_strictly_increase_and_carry_the_node() {
        let ids = IdGenerator::new(7);
        let mut last = 0;
        for _ in 0..100_000 {
            let id = ids.next_id();
            assert!(id > last, "{id} after {last}");
            assert_eq!((id >> SEQ_BITS) & u64::from(MAX_NODE_ID), 7);
            last = id;
        }
        let ms = timestamp_ms(last);
        assert!(
            ms.abs_diff(now_ms()) < 60_000,
            "timestamp far from now: {ms}"
        );
    }

    #[test]
    fn a_generator_knows_its_own_ids_only() {
        let before = IdGenerator::new(3).next_id();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let ids = IdGenerator::new(3);
        let mine = ids.next_id();
        assert!(ids.issued(mine));
        assert!(!ids.issued(before), "the same node id's earlier process");
        assert!(!ids.issued(IdGenerator::new(4).next_id()), "another node");
    }

    #[test]
    fn nodes_never_collide() {
        let a = IdGenerator::new(1);
        let b = IdGenerator::new(2);
        let set: std::collections::HashSet<u64> = (0..10_000)
            .flat_map(|_| [a.next_id(), b.next_id()])
            .collect();
        assert_eq!(set.len(), 20_000);
    }
}
