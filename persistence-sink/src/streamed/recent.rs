//! Recently accepted client ids: the streamed mode's idempotency key `(sender,
//! client_message_id)` checked at accept time, when the original may still be on its way
//! through Kafka and not yet in PostgreSQL (so the database alone cannot answer).
//!
//! Bounded by count and age: a retry comes seconds after its original (a reconnect), and one
//! older than the window is answered from PostgreSQL, where the original is by then.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chat_store::StoredMessage;

type Key = (String, String);

#[derive(Debug)]
pub(crate) struct RecentIds {
    inner: Mutex<Inner>,
    capacity: usize,
    window: Duration,
}

#[derive(Debug, Default)]
struct Inner {
    by_key: HashMap<Key, StoredMessage>,
    /// Insertion order with times, for eviction by count and age.
    order: VecDeque<(Instant, Key)>,
}

/// What [`RecentIds::claim`] found.
#[derive(Debug)]
pub(crate) enum Claim {
    /// The key is now this message's; release it if the message is refused.
    Claimed,
    /// Another message holds the key: the retry is answered with it.
    Taken(StoredMessage),
}

impl RecentIds {
    pub(crate) fn new(capacity: usize, window: Duration) -> Self {
        Self {
            inner: Mutex::default(),
            capacity,
            window,
        }
    }

    fn key(message: &StoredMessage) -> Option<Key> {
        let client_id = message.client_message_id.as_ref()?;
        Some((message.sender_id.clone(), client_id.clone()))
    }

    /// Claims `message`'s key for it unless a message holds it already. Messages without a
    /// client id are always `Claimed` (nothing to deduplicate on).
    pub(crate) fn claim(&self, message: &StoredMessage) -> Claim {
        let Some(key) = Self::key(message) else {
            return Claim::Claimed;
        };
        let now = Instant::now();
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(original) = inner.by_key.get(&key) {
            return Claim::Taken(original.clone());
        }
        inner.evict(now, self.window, self.capacity.saturating_sub(1));
        inner.by_key.insert(key.clone(), message.clone());
        inner.order.push_back((now, key));
        Claim::Claimed
    }

    /// Gives the key back after Kafka refused `message`: a retry is then a new message.
    pub(crate) fn release(&self, message: &StoredMessage) {
        let Some(key) = Self::key(message) else {
            return;
        };
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner
            .by_key
            .get(&key)
            .is_some_and(|held| held.message_id == message.message_id)
        {
            inner.by_key.remove(&key);
        }
    }
}

impl Inner {
    fn evict(&mut self, now: Instant, window: Duration, keep: usize) {
        while let Some((at, _)) = self.order.front() {
            if self.order.len() <= keep && now.duration_since(*at) < window {
                break;
            }
            if let Some((_, key)) = self.order.pop_front() {
                self.by_key.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: u64, client_id: Option<&str>) -> StoredMessage {
        StoredMessage {
            message_id: id,
            conversation_id: "c".into(),
            sender_id: "alice".into(),
            content: "hi".into(),
            content_type: "text/plain".into(),
            client_message_id: client_id.map(Into::into),
            timestamp_ms: 1,
        }
    }

    #[test]
    fn a_retry_finds_the_original_until_released() {
        let recent = RecentIds::new(10, Duration::from_secs(60));
        assert!(matches!(
            recent.claim(&message(1, Some("k"))),
            Claim::Claimed
        ));
        match recent.claim(&message(2, Some("k"))) {
            Claim::Taken(original) => assert_eq!(original.message_id, 1),
            Claim::Claimed => panic!("a retry claimed a held key"),
        }
        // Releasing as the wrong message does nothing; as the holder frees the key.
        recent.release(&message(2, Some("k")));
        assert!(matches!(
            recent.claim(&message(3, Some("k"))),
            Claim::Taken(_)
        ));
        recent.release(&message(1, Some("k")));
        assert!(matches!(
            recent.claim(&message(3, Some("k"))),
            Claim::Claimed
        ));
        assert!(matches!(recent.claim(&message(4, None)), Claim::Claimed));
    }

    #[test]
    fn bounded_by_count() {
        let recent = RecentIds::new(2, Duration::from_secs(60));
        for (id, key) in [(1, "a"), (2, "b"), (3, "c")] {
            assert!(matches!(
                recent.claim(&message(id, Some(key))),
                Claim::Claimed
            ));
        }
        assert!(matches!(
            recent.claim(&message(9, Some("c"))),
            Claim::Taken(_)
        ));
        assert!(
            matches!(recent.claim(&message(9, Some("a"))), Claim::Claimed),
            "the oldest was evicted"
        );
    }
}
