//! A subscription's id as the router holds it and every delivery carries it to the session.
//!
//! A fan-out makes one delivery per subscriber, and each delivery names its subscription. As a
//! shared `Arc<str>` that was one reference-count increment on the publisher's core and its
//! decrement on the subscriber's, per delivery: a cache line bouncing between the cores for
//! every subscriber of every message (with the message's own count, 16 % of the broker's
//! samples at 1→100, docs/benchmarks.md). Ids clients choose are short (`0`, `sub-0`, a UUID's
//! 36 bytes at most in practice), so an id of up to [`INLINE`] bytes is copied inline instead:
//! a clone is a 24-byte copy that writes nothing shared. Longer ids still share one `Arc<str>`.
//! The session finds the subscription by the id's text, as before, so what a delivery reaches
//! does not depend on which form it took.

use std::fmt;
use std::sync::Arc;

/// The longest id kept inline (the enum stays 24 bytes, as a `String`).
pub const INLINE: usize = 22;

#[derive(Clone)]
pub struct SubscriptionId(Repr);

#[derive(Clone)]
enum Repr {
    Inline { len: u8, bytes: [u8; INLINE] },
    Shared(Arc<str>),
}

impl SubscriptionId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            // Built from a `&str` of exactly `len` bytes, so this is that text: valid UTF-8.
            Repr::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            Repr::Shared(id) => id,
        }
    }

    /// Whether cloning this id writes to shared memory (a reference count): only for ids
    /// longer than [`INLINE`] bytes.
    pub fn is_shared(&self) -> bool {
        matches!(self.0, Repr::Shared(_))
    }
}

impl From<&Arc<str>> for SubscriptionId {
    fn from(id: &Arc<str>) -> Self {
        match inline(id) {
            Some(repr) => Self(repr),
            None => Self(Repr::Shared(Arc::clone(id))),
        }
    }
}

impl From<&str> for SubscriptionId {
    fn from(id: &str) -> Self {
        match inline(id) {
            Some(repr) => Self(repr),
            None => Self(Repr::Shared(Arc::from(id))),
        }
    }
}

fn inline(id: &str) -> Option<Repr> {
    let len = u8::try_from(id.len())
        .ok()
        .filter(|&n| usize::from(n) <= INLINE)?;
    let mut bytes = [0; INLINE];
    bytes[..id.len()].copy_from_slice(id.as_bytes());
    Some(Repr::Inline { len, bytes })
}

impl PartialEq<str> for SubscriptionId {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl fmt::Debug for SubscriptionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for SubscriptionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::{INLINE, SubscriptionId};
    use std::sync::Arc;

    #[test]
    fn short_ids_are_copied_without_touching_a_reference_count() {
        for text in ["", "0", "sub-0", "é✓", &"x".repeat(INLINE)] {
            let arc: Arc<str> = Arc::from(text);
            let id = SubscriptionId::from(&arc);
            let copies: Vec<_> = (0..3).map(|_| id.clone()).collect();
            assert_eq!(Arc::strong_count(&arc), 1, "{text:?}");
            assert!(!id.is_shared());
            for copy in copies.iter().chain([&id]) {
                assert_eq!(copy.as_str(), text);
            }
        }
    }

    #[test]
    fn long_ids_share_one_allocation_and_read_back_whole() {
        for text in ["y".repeat(INLINE + 1), "ü".repeat(40), "x".repeat(300)] {
            let arc: Arc<str> = Arc::from(text.as_str());
            let id = SubscriptionId::from(&arc);
            assert!(id.is_shared());
            assert_eq!(Arc::strong_count(&arc), 2);
            assert_eq!(id.as_str(), text);
            assert_eq!(SubscriptionId::from(text.as_str()).as_str(), text);
        }
    }

    #[test]
    fn stays_the_size_of_a_string() {
        assert_eq!(std::mem::size_of::<SubscriptionId>(), 24);
    }
}
