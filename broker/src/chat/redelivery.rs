//! Whether a retried send, which the store answers with the original it already holds, goes
//! out to the members again (docs/protocol.md, "Cluster mode").
//!
//! The node whose sequencer stored a message delivered it in the same step (effects are
//! applied as the outcome is), so a retry through that node delivers nothing again. The
//! original goes out again only where this node did not deliver it:
//! - this process took the id but the store write ended in an error (the store may hold it
//!   all the same, and nobody was sent it), in every mode;
//! - in a cluster, another process took it (another node, or this node before a restart):
//!   it may have died between storing and delivering while members stayed connected to other
//!   nodes. Once per node: a further retry through this node delivers nothing.
//!
//! A single node restarted delivers nothing of its previous life again: the restart closed
//! every session, and reconnecting clients sync.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use crate::id::IdGenerator;

/// Ids remembered in each of [`Redelivery`]'s sets, at most. Both are rare events (a store
/// write that failed, a retry through another node); past this many the oldest is forgotten:
/// a forgotten failed write's retry delivers nothing live (members find it by sync and
/// history), a forgotten redelivery's next retry delivers it once more.
const MAX_REMEMBERED: usize = 65_536;

/// What this node knows beyond the ids it took itself (`IdGenerator::issued`: delivered).
#[derive(Debug, Default)]
pub struct Redelivery {
    /// Ids this process took whose store write failed: the store may hold them, nothing was
    /// delivered.
    unsure: Mutex<Remembered>,
    /// Ids another process took that a retry through this node delivered again.
    redelivered: Mutex<Remembered>,
}

/// A set of ids bounded by [`MAX_REMEMBERED`], forgetting the oldest first.
#[derive(Debug, Default)]
struct Remembered {
    ids: HashSet<u64>,
    order: VecDeque<u64>,
}

impl Remembered {
    fn insert(&mut self, id: u64) {
        if self.ids.insert(id) {
            self.order.push_back(id);
        }
        while self.order.len() > MAX_REMEMBERED {
            if let Some(oldest) = self.order.pop_front() {
                self.ids.remove(&oldest);
            }
        }
    }
}

fn lock(set: &Mutex<Remembered>) -> std::sync::MutexGuard<'_, Remembered> {
    set.lock().unwrap_or_else(|p| p.into_inner())
}

impl Redelivery {
    /// The store answered the write of `message_id` with an error: it may hold it anyway.
    pub fn write_failed(&self, message_id: u64) {
        lock(&self.unsure).insert(message_id);
    }

    /// Whether the retry of `original` (an id the store holds) delivers it again, given
    /// whether other nodes may have taken it (`clustered`). Answering yes counts as this
    /// node's delivery: a further retry through it delivers nothing.
    pub fn needed(&self, ids: &IdGenerator, clustered: bool, original: u64) -> bool {
        if ids.issued(original) {
            // Left in `order` until it ages out; `ids` is what is asked.
            return lock(&self.unsure).ids.remove(&original);
        }
        if !clustered {
            return false;
        }
        let mut redelivered = lock(&self.redelivered);
        if redelivered.ids.contains(&original) {
            return false;
        }
        redelivered.insert(original);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_redelivers_what_this_process_did_not_deliver_once() {
        let ids = IdGenerator::new(1);
        let redelivery = Redelivery::default();
        let delivered = ids.next_id();
        assert!(!redelivery.needed(&ids, true, delivered), "delivered here");
        let elsewhere = IdGenerator::new(2).next_id();
        assert!(
            redelivery.needed(&ids, true, elsewhere),
            "another node took it"
        );
        assert!(
            !redelivery.needed(&ids, true, elsewhere),
            "delivered here by then"
        );
        let failed = ids.next_id();
        redelivery.write_failed(failed);
        assert!(
            redelivery.needed(&ids, true, failed),
            "stored but not delivered"
        );
        assert!(
            !redelivery.needed(&ids, true, failed),
            "delivered by the first retry"
        );
    }

    #[test]
    fn a_single_node_redelivers_only_what_it_failed_to_write() {
        let ids = IdGenerator::new(1);
        let redelivery = Redelivery::default();
        assert!(!redelivery.needed(&ids, false, ids.next_id()));
        let failed = ids.next_id();
        redelivery.write_failed(failed);
        assert!(redelivery.needed(&ids, false, failed));
        assert!(!redelivery.needed(&ids, false, failed));
        let before_restart = ids.next_id() - (60_000 << 22); // a minute before this process
        assert!(!redelivery.needed(&ids, false, before_restart));
    }

    #[test]
    fn bounded() {
        let ids = IdGenerator::new(1);
        let redelivery = Redelivery::default();
        let first = ids.next_id();
        redelivery.write_failed(first);
        for _ in 0..MAX_REMEMBERED {
            redelivery.write_failed(ids.next_id());
        }
        assert!(
            !redelivery.needed(&ids, true, first),
            "the oldest was forgotten"
        );
    }
}
