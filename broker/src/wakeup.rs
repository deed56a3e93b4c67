//! Deadline wake-ups shared by every session: one timer task wakes each session at its next
//! deadline (heart-beats both ways, the token's expiry, the end of its quiet period), instead of a
//! tokio `Sleep` inside every session's future.
//!
//! Why: an idle session's task is per-connection memory for as long as the connection is open,
//! and a `Sleep` is one of the largest things in it (its timer entry is intrusive: it lives in
//! the future, waker and list pointers included; docs/benchmarks.md, idle sections). Here a
//! session holds a [`Wakeup`] (its one registration's key, 8 B) and the timer holds the
//! registration: a key and the task's waker in one ordered map.
//!
//! A key is the deadline itself, a [`Moment`] (8 B), unique in the map: a deadline already
//! taken is registered a microsecond later, and none at or before the last one fired (see
//! [`State::free_key`]), so a session's key is never another's, even once it has fired and
//! the session has not looked yet. An entry with the waker is then 24 B and a B-tree leaf of
//! 11 one 320-B allocation; with `(Instant, registration number)` keys it was 40 B and 512 B
//! (docs/benchmarks.md, "Seventh cuts").
//!
//! Exact, not coarse: the timer task sleeps until the earliest registration, so a session is
//! woken when its deadline passes, within tokio's timer resolution (1 ms) plus one task
//! hop. Each session has at most one registration. A deadline that moves later (a frame
//! arrived, a heart-beat went out) does not touch the map: the earlier registration fires, the
//! session finds nothing due and registers its new deadline, i.e. about one registration per
//! heart-beat interval, not one per frame.

use std::collections::BTreeMap;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::sleep_until;
use tokio_util::sync::CancellationToken;

use crate::moment::{Clock, Moment};

/// Most wakers taken from the map under one hold of its lock.
const BATCH: usize = 1024;

/// The registrations of every session of one broker, and the timer task that fires them.
/// No `Default`: its deadlines must be moments of the broker's own clock ([`Wakeups::new`]);
/// one on a clock of its own would compare them against another origin.
#[derive(Debug)]
pub struct Wakeups {
    state: Mutex<State>,
    /// What the deadlines are moments of (the broker's).
    clock: Clock,
    /// Tells the timer task that a registration now comes first.
    earlier: Notify,
}

#[derive(Debug, Default)]
struct State {
    /// By deadline (each a key of its own: [`State::free_key`]).
    entries: BTreeMap<Moment, Waker>,
    /// The latest key fired: later keys only are given out.
    fired: Option<Moment>,
}

impl State {
    /// The key for a registration due at `deadline`: the first moment from it that no other
    /// registration holds and that is after every key fired. Keys are microseconds, so a
    /// clash is rare, and its step at most delays a wake-up to tokio's next millisecond tick.
    fn free_key(&self, deadline: Moment) -> Moment {
        let step = |key: Moment| key + Duration::from_micros(1);
        let mut key = match self.fired {
            Some(fired) if deadline <= fired => step(fired),
            _ => deadline,
        };
        while self.entries.contains_key(&key) {
            key = step(key);
        }
        key
    }
}

/// One session's registration, if it has one: its key in [`Wakeups`].
#[derive(Debug, Default)]
pub struct Wakeup(Option<Moment>);

impl Wakeups {
    /// Deadlines are moments of `clock`.
    pub fn new(clock: Clock) -> Self {
        Self {
            state: Mutex::default(),
            clock,
            earlier: Notify::new(),
        }
    }

    /// Ready once `deadline` has passed (never for `None`); until then, the task that polls is
    /// woken when it does. A slot must be polled from one task only: a registration made
    /// earlier is trusted to wake the same task.
    pub fn poll_deadline(
        &self,
        slot: &mut Wakeup,
        deadline: Option<Moment>,
        cx: &mut Context<'_>,
    ) -> Poll<()> {
        let Some(deadline) = deadline else {
            self.cancel(slot);
            return Poll::Pending;
        };
        let now = self.clock.now();
        if deadline <= now {
            self.cancel(slot);
            return Poll::Ready(());
        }
        if let Some(at) = slot.0
            && at <= deadline
            && at > now
        {
            // An earlier registration is still to fire; the poll it causes registers this one.
            return Poll::Pending;
        }
        let mut state = self.state.lock();
        if let Some(key) = slot.0.take() {
            state.entries.remove(&key);
        }
        let key = state.free_key(deadline);
        let first = state
            .entries
            .first_key_value()
            .is_none_or(|(k, _)| key < *k);
        state.entries.insert(key, cx.waker().clone());
        drop(state);
        slot.0 = Some(key);
        if first {
            self.earlier.notify_one();
        }
        Poll::Pending
    }

    /// Drops the slot's registration, if any (a closing session's).
    pub fn cancel(&self, slot: &mut Wakeup) {
        if let Some(key) = slot.0.take() {
            self.state.lock().entries.remove(&key);
        }
    }

    /// How many registrations are waiting.
    pub fn len(&self) -> usize {
        self.state.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The timer task: wakes each registration as its deadline passes, until `done`.
    pub async fn run(&self, done: CancellationToken) {
        let mut due = Vec::new();
        loop {
            let next = {
                let mut state = self.state.lock();
                let now = self.clock.now();
                while due.len() < BATCH
                    && let Some(entry) = state.entries.first_entry()
                    && *entry.key() <= now
                {
                    let (key, waker) = entry.remove_entry();
                    state.fired = Some(key);
                    due.push(waker);
                }
                state.entries.first_key_value().map(|(k, _)| *k)
            };
            let full = due.len() == BATCH;
            due.drain(..).for_each(Waker::wake);
            if full {
                tokio::task::yield_now().await;
                continue;
            }
            let wait = async {
                match next {
                    Some(at) => sleep_until(self.clock.instant(at)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = done.cancelled() => return,
                () = self.earlier.notified() => {}
                () = wait => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::time::Instant;

    use super::*;

    /// Waits for `deadline` through `wakeups`, as a session does.
    async fn wait(wakeups: &Wakeups, slot: &mut Wakeup, deadline: Instant) {
        let deadline = wakeups.clock.moment(deadline);
        std::future::poll_fn(|cx| wakeups.poll_deadline(slot, Some(deadline), cx)).await
    }

    fn started() -> (Arc<Wakeups>, CancellationToken) {
        let wakeups = Arc::new(Wakeups::new(Clock::new()));
        let done = CancellationToken::new();
        let timer = Arc::clone(&wakeups);
        let stop = done.clone();
        tokio::spawn(async move { timer.run(stop).await });
        (wakeups, done)
    }

    #[tokio::test(start_paused = true)]
    async fn a_session_wakes_at_its_deadline_not_before() {
        let (wakeups, done) = started();
        let start = Instant::now();
        let mut slot = Wakeup::default();
        wait(&wakeups, &mut slot, start + Duration::from_millis(1500)).await;
        assert_eq!(start.elapsed(), Duration::from_millis(1500));
        assert!(wakeups.is_empty(), "a fired registration leaves the map");
        done.cancel();
    }

    #[tokio::test(start_paused = true)]
    async fn an_earlier_deadline_comes_first_and_a_later_one_follows() {
        let (wakeups, done) = started();
        let start = Instant::now();
        let late = {
            let wakeups = Arc::clone(&wakeups);
            tokio::spawn(async move {
                let mut slot = Wakeup::default();
                wait(&wakeups, &mut slot, start + Duration::from_secs(10)).await;
                start.elapsed()
            })
        };
        tokio::task::yield_now().await;
        let mut slot = Wakeup::default();
        wait(&wakeups, &mut slot, start + Duration::from_millis(200)).await;
        assert_eq!(start.elapsed(), Duration::from_millis(200));
        assert_eq!(
            late.await.expect("the later waiter"),
            Duration::from_secs(10)
        );
        done.cancel();
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_moved_later_fires_at_the_new_time_with_one_registration() {
        let (wakeups, done) = started();
        let start = Instant::now();
        let mut slot = Wakeup::default();
        let first = start + Duration::from_secs(1);
        let moved = start + Duration::from_secs(3);
        // Registered at 1 s; by then the deadline has moved to 3 s (as a frame moves the
        // heart-beat deadline): the 1 s wake-up finds nothing due and registers 3 s.
        let mut deadline = first;
        std::future::poll_fn(|cx| {
            let at = wakeups.clock.moment(deadline);
            let polled = wakeups.poll_deadline(&mut slot, Some(at), cx);
            deadline = moved;
            assert!(wakeups.len() <= 1, "one registration per slot");
            polled
        })
        .await;
        assert_eq!(start.elapsed(), Duration::from_secs(3));
        done.cancel();
    }

    #[tokio::test(start_paused = true)]
    async fn two_sessions_with_one_deadline_both_wake() {
        let (wakeups, done) = started();
        let start = Instant::now();
        let deadline = start + Duration::from_millis(700);
        let other = {
            let wakeups = Arc::clone(&wakeups);
            tokio::spawn(async move {
                let mut slot = Wakeup::default();
                wait(&wakeups, &mut slot, deadline).await;
                start.elapsed()
            })
        };
        tokio::task::yield_now().await;
        let mut slot = Wakeup::default();
        wait(&wakeups, &mut slot, deadline).await;
        let ours = start.elapsed();
        let theirs = other.await.expect("the other waiter");
        // The second registration is a microsecond later, which tokio's millisecond timer
        // may round up to the next millisecond.
        let on_time = Duration::from_millis(700)..=Duration::from_millis(701);
        assert!(
            on_time.contains(&ours) && on_time.contains(&theirs),
            "{ours:?}, {theirs:?}"
        );
        done.cancel();
    }

    #[test]
    fn a_key_is_never_one_held_nor_one_fired() {
        let at = Clock::new().now() + Duration::from_secs(1);
        let mut state = State::default();
        assert_eq!(state.free_key(at), at);
        state.entries.insert(at, Waker::noop().clone());
        let taken = state.free_key(at);
        assert!(taken > at, "held: the next free moment");
        state.entries.clear();
        state.fired = Some(taken);
        // A session that has not looked since its key fired still holds it: a deadline at or
        // before that key (another thread's clock read a moment earlier) must not reuse it.
        assert!(state.free_key(at) > taken);
        assert!(state.free_key(taken) > taken);
        let later = taken + Duration::from_millis(5);
        assert_eq!(state.free_key(later), later);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_registration_wakes_nobody() {
        let (wakeups, done) = started();
        let mut slot = Wakeup::default();
        let deadline = wakeups
            .clock
            .moment(Instant::now() + Duration::from_secs(1));
        let mut polled = false;
        std::future::poll_fn(|cx| {
            if !polled {
                polled = true;
                assert!(
                    wakeups
                        .poll_deadline(&mut slot, Some(deadline), cx)
                        .is_pending()
                );
            }
            Poll::Ready(())
        })
        .await;
        assert_eq!(wakeups.len(), 1);
        wakeups.cancel(&mut slot);
        assert!(wakeups.is_empty());
        tokio::time::sleep(Duration::from_secs(2)).await;
        done.cancel();
    }
}
