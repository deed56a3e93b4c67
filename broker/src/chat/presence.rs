//! Who is online: a user is online while at least one of their sessions is alive, several
//! devices folding into one status (first join / last leave). The chat talks to a
//! [`PresenceBackend`]: single-node mode keeps presence in process ([`Local`]); cluster mode
//! keeps it in Redis (`cluster/presence.rs` implements the same trait).
//!
//! Liveness follows the design's TTL: each session's entry expires `ttl` after its last
//! sign of life (any inbound traffic, heart-beats included), so a session that dies silently
//! goes offline when its entry lapses even before its socket is noticed dead; a clean
//! disconnect goes offline at once. Cluster mode moves this into Redis with the same TTL.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use futures_util::future::{self, BoxFuture};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::now_ms;
use crate::moment::{Clock, Moment};

#[derive(Debug, Default)]
struct UserPresence {
    /// Session id and when its entry lapses. A vector, not a map: a user has a session or a
    /// few, and a one-entry hash map costs a table of buckets per online user (issue 17). A
    /// [`Moment`], not an `Instant`: a one-session vector is then a 16-B allocation, not 32.
    sessions: Vec<(u64, Moment)>,
    last_seen_ms: u64,
}

/// Takes a status change a backend found on its own (after a report, or in a sweep).
pub type Announce = Box<dyn Fn(Change) + Send + Sync>;

/// Where presence lives: this process, or a store shared by every node.
pub trait PresenceBackend: Send + Sync + Debug {
    /// How long a session's entry lives after its last sign of life.
    fn ttl(&self) -> Duration;

    /// A session of `user` is alive (`touch`) or ended cleanly. Never waits. `Some` when the
    /// user's status changed and the backend knows it at once; a backend that learns it later
    /// gives it to the `announce` of [`PresenceBackend::start`].
    fn report(&self, user: &str, session: u64, touch: bool) -> Option<Change>;

    /// Starts the backend's own work, tracked by `tasks` and ending with `done`.
    fn start(self: Arc<Self>, announce: Announce, tasks: &TaskTracker, done: CancellationToken) {
        let _ = (announce, tasks, done);
    }

    /// Drops lapsed session entries; returns the users that thereby went offline.
    fn sweep(&self) -> BoxFuture<'_, Vec<Change>>;

    /// (online, last seen ms) per user. Unknown (a shared store unreachable) reads as offline:
    /// a spurious push notification is better than a lost one.
    fn statuses<'a>(&'a self, users: &'a [String]) -> BoxFuture<'a, Vec<(bool, Option<u64>)>>;

    /// Whether `change` is still the user's status: with several nodes, another may have seen
    /// the opposite change meanwhile (a user leaving one node as they join another). Unknown
    /// counts as still true.
    fn still_holds<'a>(&'a self, change: &'a Change) -> BoxFuture<'a, bool>;
}

#[derive(Debug)]
pub struct Local {
    /// By user name, a `Box<str>` (16 B, not a `String`'s 24): the table's buckets, about
    /// 1.7 per user at 19,000 users, are paid per user ever seen.
    users: DashMap<Box<str>, UserPresence>,
    ttl: Duration,
    clock: Clock,
}

/// A user's status changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub user: String,
    pub online: bool,
    pub last_seen_ms: u64,
}

impl Local {
    pub fn new(ttl: Duration) -> Self {
        Self {
            users: DashMap::new(),
            ttl,
            clock: Clock::new(),
        }
    }

    /// A session of `user` is alive (connect, or any traffic). `Some` when the user just came
    /// online.
    pub fn touch(&self, user: &str, session: u64) -> Option<Change> {
        let mut entry = self.users.entry(Box::from(user)).or_default();
        let was_online = !entry.sessions.is_empty();
        let lapses = self.clock.now() + self.ttl;
        match entry.sessions.iter_mut().find(|(id, _)| *id == session) {
            Some(known) => known.1 = lapses,
            None => {
                if entry.sessions.capacity() == 0 {
                    entry.sessions.reserve_exact(1);
                }
                entry.sessions.push((session, lapses));
            }
        }
        entry.last_seen_ms = now_ms();
        (!was_online).then(|| Change {
            user: user.to_string(),
            online: true,
            last_seen_ms: entry.last_seen_ms,
        })
    }

    /// A session ended. `Some` when it was the user's last.
    pub fn leave(&self, user: &str, session: u64) -> Option<Change> {
        let mut entry = self.users.get_mut(user)?;
        let at = entry.sessions.iter().position(|(id, _)| *id == session)?;
        entry.sessions.swap_remove(at);
        if !entry.sessions.is_empty() {
            return None;
        }
        // Offline, the entry only keeps last seen: give the session table's memory back.
        entry.sessions = Vec::new();
        entry.last_seen_ms = now_ms();
        Some(Change {
            user: user.to_string(),
            online: false,
            last_seen_ms: entry.last_seen_ms,
        })
    }

    /// Drops lapsed session entries; returns the users that thereby went offline.
    pub fn sweep(&self) -> Vec<Change> {
        let now = self.clock.now();
        let mut changes = Vec::new();
        for mut entry in self.users.iter_mut() {
            if entry.sessions.is_empty() {
                continue;
            }
            let before = entry.sessions.len();
            entry.sessions.retain(|(_, lapses)| *lapses > now);
            if before > 0 && entry.sessions.is_empty() {
                entry.sessions = Vec::new();
                changes.push(Change {
                    user: entry.key().to_string(),
                    online: false,
                    last_seen_ms: entry.last_seen_ms,
                });
            }
        }
        changes
    }

    /// (online, last seen in ms) — last seen is `None` for a user never seen on this node.
    pub fn status(&self, user: &str) -> (bool, Option<u64>) {
        match self.users.get(user) {
            Some(p) => (!p.sessions.is_empty(), Some(p.last_seen_ms)),
            None => (false, None),
        }
    }
}

impl PresenceBackend for Local {
    fn ttl(&self) -> Duration {
        self.ttl
    }

    fn report(&self, user: &str, session: u64, touch: bool) -> Option<Change> {
        if touch {
            self.touch(user, session)
        } else {
            self.leave(user, session)
        }
    }

    fn sweep(&self) -> BoxFuture<'_, Vec<Change>> {
        Box::pin(future::ready(Local::sweep(self)))
    }

    fn statuses<'a>(&'a self, users: &'a [String]) -> BoxFuture<'a, Vec<(bool, Option<u64>)>> {
        Box::pin(future::ready(
            users.iter().map(|u| self.status(u)).collect(),
        ))
    }

    /// One node's single sequencer already keeps its changes in order.
    fn still_holds<'a>(&'a self, _: &'a Change) -> BoxFuture<'a, bool> {
        Box::pin(future::ready(true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn two_devices_fold_into_one_status_and_silence_lapses() {
        let p = Local::new(Duration::from_secs(30));
        assert!(p.touch("ann", 1).is_some_and(|c| c.online));
        assert!(p.touch("ann", 2).is_none(), "second device: already online");
        assert!(p.leave("ann", 1).is_none(), "one device left: still online");
        assert!(p.status("ann").0);
        tokio::time::advance(Duration::from_secs(20)).await;
        assert!(p.sweep().is_empty());
        tokio::time::advance(Duration::from_secs(11)).await;
        let gone = p.sweep();
        assert_eq!(gone.len(), 1);
        assert!(!gone[0].online);
        assert!(!p.status("ann").0);
        assert!(
            p.leave("ann", 2).is_none(),
            "already offline: no second event"
        );
    }
}
