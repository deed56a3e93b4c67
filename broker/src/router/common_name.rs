//! The few destination names that many subscriptions share, kept once.
//!
//! Every chat client subscribes to the same `/user/queue/...` names; each subscription keeps
//! the name it was made with (the MESSAGE `destination`, the admin API's record). As a string
//! of its own that is a 48-B allocation per subscription, per connection, for as long as it is
//! open (docs/benchmarks.md, "Sixth cuts"); shared, it is a pointer.
//!
//! A handful of the names most recently asked for are kept, replaced in turn: a name many
//! subscriptions use is found there nearly always, and a client subscribing to names of its
//! own cannot grow it (those then simply get their own copy).

use std::sync::Arc;

use parking_lot::Mutex;

/// How many names are kept: more than the `/user` queues a chat client subscribes to (its
/// messages, receipts, errors), few enough that a lookup is a short scan at SUBSCRIBE.
const KEPT: usize = 8;

#[derive(Debug, Default)]
pub struct CommonNames {
    kept: Mutex<Kept>,
}

#[derive(Debug, Default)]
struct Kept {
    names: Vec<Arc<str>>,
    /// The slot the next new name replaces once all are taken.
    next: usize,
}

impl CommonNames {
    /// `name`, shared with every other caller that asked for it while it was kept.
    pub fn get(&self, name: &str) -> Arc<str> {
        let mut kept = self.kept.lock();
        if let Some(found) = kept.names.iter().find(|kept| &***kept == name) {
            return Arc::clone(found);
        }
        let shared: Arc<str> = Arc::from(name);
        if kept.names.len() < KEPT {
            kept.names.push(Arc::clone(&shared));
        } else {
            let slot = kept.next;
            kept.names[slot] = Arc::clone(&shared);
            kept.next = (slot + 1) % KEPT;
        }
        shared
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::{CommonNames, KEPT};

    #[test]
    fn a_name_asked_for_again_is_the_same_allocation() {
        let names = CommonNames::default();
        let first = names.get("/user/queue/messages");
        let second = names.get("/user/queue/messages");
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(&*second, "/user/queue/messages");
    }

    #[test]
    fn names_of_their_own_do_not_grow_it_and_evict_the_oldest() {
        let names = CommonNames::default();
        let first = names.get("/user/queue/a");
        for i in 0..10 * KEPT {
            names.get(&format!("/user/queue/own-{i}"));
        }
        assert_eq!(names.kept.lock().names.len(), KEPT);
        let again = names.get("/user/queue/a");
        assert!(!Arc::ptr_eq(&first, &again), "evicted, so a fresh copy");
        assert_eq!(&*again, "/user/queue/a");
    }
}
