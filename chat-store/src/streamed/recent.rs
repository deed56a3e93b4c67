//! Recently accepted client ids: the streamed mode's idempotency key `(sender,
//! client_message_id)` checked at accept time, when the original may still be on its way
//! through Kafka and not yet in PostgreSQL (so the database alone cannot answer).
//!
//! Bounded by count and age: a retry comes seconds after its original (a reconnect), and one
//! older than the window is answered from PostgreSQL, where the original is by then.
//!
//! A message Kafka did not acknowledge in time is *in doubt*: Kafka may still have stored it.
//! Its retry re-sends the same message (same id), so whichever copy Kafka keeps, PostgreSQL
//! ends up with one row under the id the sender's RECEIPT names.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::StoredMessage;

type Key = (String, String);

#[derive(Debug)]
pub(crate) struct RecentIds {
    inner: Mutex<Inner>,
    capacity: usize,
    window: Duration,
}

#[derive(Debug, Default)]
struct Inner {
    /// The message holding each key, and whether it is in doubt.
    by_key: HashMap<Key, (StoredMessage, bool)>,
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
    /// The message holding the key is in doubt: send it again (same id); the key is held
    /// for it again.
    Resend(StoredMessage),
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
        if let Some((original, in_doubt)) = inner.by_key.get_mut(&key) {
            return if std::mem::take(in_doubt) {
                Claim::Resend(original.clone())
            } else {
                Claim::Taken(original.clone())
            };
        }
        inner.evict(now, self.window, self.capacity.saturating_sub(1));
        inner.by_key.insert(key.clone(), (message.clone(), false));
        inner.order.push_back((now, key));
        Claim::Claimed
    }

    /// Gives the key back: `message` never reached Kafka, so a retry is a new message.
    pub(crate) fn release(&self, message: &StoredMessage) {
        let Some(key) = Self::key(message) else {
            return;
        };
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner
            .by_key
            .get(&key)
            .is_some_and(|(held, _)| held.message_id == message.message_id)
        {
            inner.by_key.remove(&key);
        }
    }

    /// `message` went to Kafka but was not acknowledged: its retry re-sends it.
    pub(crate) fn doubt(&self, message: &StoredMessage) {
        let Some(key) = Self::key(message) else {
            return;
        };
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((held, in_doubt)) = inner.by_key.get_mut(&key)
            && held.message_id == message.message_id
        {
            *in_doubt = true;
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
            other => panic!("a retry claimed a held key: {other:?}"),
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
    fn a_retry_of_a_message_in_doubt_resends_it_once() {
        let recent = RecentIds::new(10, Duration::from_secs(60));
        assert!(matches!(
            recent.claim(&message(1, Some("k"))),
            Claim::Claimed
        ));
        recent.doubt(&message(1, Some("k")));
        match recent.claim(&message(2, Some("k"))) {
            Claim::Resend(original) => assert_eq!(original.message_id, 1),
            other => panic!("expected a resend of the original, got {other:?}"),
        }
        // The resend holds the key again: a second retry meanwhile is a plain duplicate.
        assert!(matches!(
            recent.claim(&message(3, Some("k"))),
            Claim::Taken(_)
        ));
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
