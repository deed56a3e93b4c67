//! Local interest: how many local subscriptions want each Redis channel.
//!
//! Sessions change interest synchronously (SUBSCRIBE handling never waits on Redis); the
//! subscriber task is told which channels changed and brings the Redis subscription set in
//! line. The "changed" set is bounded by the number of distinct channels, so no queue of
//! (un)subscribe commands can grow without bound, and a channel that flaps between 0 and 1
//! while the task is busy costs nothing.

use std::collections::HashSet;
use std::time::Duration;

use dashmap::{DashMap, DashSet};
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::channel::Channel;

#[derive(Debug, Default)]
pub struct Interest {
    counts: DashMap<Channel, usize>,
    changed: Mutex<HashSet<Channel>>,
    pub(super) wake: Notify,
    /// Channels Redis has confirmed this node is subscribed to, now.
    live: DashSet<Channel>,
    confirmed: Notify,
}

impl Interest {
    pub fn add(&self, channel: Channel) {
        let mut count = self.counts.entry(channel.clone()).or_insert(0);
        *count += 1;
        let first = *count == 1;
        drop(count);
        if first {
            self.mark(channel);
        }
    }

    pub fn remove(&self, channel: &Channel) {
        let last = self
            .counts
            .remove_if_mut(channel, |_, count| {
                *count = count.saturating_sub(1);
                *count == 0
            })
            .is_some();
        if last {
            self.mark(channel.clone());
        }
    }

    fn mark(&self, channel: Channel) {
        self.changed.lock().insert(channel);
        self.wake.notify_one();
    }

    pub fn wanted(&self, channel: &Channel) -> bool {
        self.counts.contains_key(channel)
    }

    /// Channels whose interest changed since the last call.
    pub fn take_changed(&self) -> Vec<Channel> {
        self.changed.lock().drain().collect()
    }

    /// Every channel wanted now (after a reconnect, all of them are subscribed again).
    pub fn all(&self) -> Vec<Channel> {
        self.counts.iter().map(|e| e.key().clone()).collect()
    }

    pub(super) fn confirm(&self, channels: impl IntoIterator<Item = Channel>) {
        for channel in channels {
            self.live.insert(channel);
        }
        self.confirmed.notify_waiters();
    }

    pub(super) fn unconfirm(&self, channel: &Channel) {
        self.live.remove(channel);
    }

    pub(super) fn unconfirm_all(&self) {
        self.live.clear();
    }

    /// Waits until Redis confirmed the subscription to `channel`, up to `within`; `false` if
    /// it did not happen in time.
    pub async fn until_live(&self, channel: &Channel, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            let notified = self.confirmed.notified();
            tokio::pin!(notified);
            // Registered before the check, so a confirmation in between is not missed.
            notified.as_mut().enable();
            if self.live.contains(channel) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_and_last_subscriber_mark_the_channel() {
        let interest = Interest::default();
        let a = Channel::Topic("a".into());
        interest.add(a.clone());
        interest.add(a.clone());
        assert_eq!(interest.take_changed(), vec![a.clone()]);
        interest.remove(&a);
        assert!(interest.take_changed().is_empty(), "one subscriber left");
        assert!(interest.wanted(&a));
        interest.remove(&a);
        assert_eq!(interest.take_changed(), vec![a.clone()]);
        assert!(!interest.wanted(&a));
        interest.remove(&a);
        assert!(!interest.wanted(&a), "an extra remove does not underflow");
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_for_a_channel_ends_at_its_confirmation_or_the_deadline() {
        let interest = std::sync::Arc::new(Interest::default());
        let bob = Channel::User("bob".into());
        let waiting = {
            let (interest, bob) = (std::sync::Arc::clone(&interest), bob.clone());
            tokio::spawn(async move { interest.until_live(&bob, Duration::from_secs(1)).await })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        interest.confirm([bob.clone()]);
        assert!(waiting.await.expect("joins"));
        interest.unconfirm_all();
        assert!(!interest.until_live(&bob, Duration::from_millis(50)).await);
    }
}
