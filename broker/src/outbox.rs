//! A session's bounded outbound queue: the only way anything reaches a session from outside.
//!
//! Routers and queues push without ever waiting (`try_push`); the session task drains the
//! whole queue at once and writes it as one batch. The queue is bounded in frames and bytes;
//! what happens when it is full is the configured [`SlowConsumerPolicy`]. An idle session's
//! outbox holds no allocation (an empty `VecDeque` does not allocate).
//!
//! A publisher's run of messages to one topic goes in with one push ([`Outbox::try_push_run`]):
//! one lock, at most one wake-up and one shared reference for the whole run, counted as the
//! frames and bytes it holds. A run that does not fit whole is pushed message by message, so
//! the bound and the slow-consumer policy act on exactly the message they would have alone.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;
use parking_lot::Mutex;

use crate::config::SlowConsumerPolicy;
use crate::message::{Delivery, Run};
use crate::metrics::delivery::DropReason;
use crate::subscription_id::SubscriptionId;

#[derive(Debug)]
pub enum Outbound {
    Deliver(Delivery),
    /// A frame for this session only, encoded by it (a RECEIPT that had to wait for storage).
    Frame(stomp_codec::Frame),
    /// A publisher's run of messages to one topic, for one subscription: as many frames as it
    /// holds messages (`router/fanout.rs`).
    Run(SubscriptionId, Arc<Run>),
}

impl Outbound {
    fn weight(&self) -> usize {
        match self {
            Outbound::Deliver(d) => d.message.weight(),
            Outbound::Frame(f) => 64 + f.body.len(),
            Outbound::Run(_, run) => run.weight,
        }
    }

    /// The frames this item writes.
    fn frames(&self) -> usize {
        match self {
            Outbound::Run(_, run) => run.messages.len(),
            Outbound::Deliver(_) | Outbound::Frame(_) => 1,
        }
    }
}

/// How full an outbox is after a push: `High` past half its bound, the point at which a
/// publisher feeding it should slow down before the slow-consumer policy has to act.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pressure {
    Normal,
    High,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushError {
    /// The session is gone or going; the item was not queued.
    Closed,
    /// Over the bound; under `Disconnect` the session has been told to close.
    Full,
}

#[derive(Debug, Default)]
struct State {
    items: VecDeque<Outbound>,
    /// Frames `items` hold (a run is several): what `max_frames` bounds. A `u32` fits in the
    /// padding beside the flags, so an idle outbox is no larger than before runs.
    frames: u32,
    bytes: usize,
    overflowed: bool,
    closed: bool,
}

#[derive(Debug)]
pub struct Outbox {
    state: Mutex<State>,
    /// The session task's waker, and whether it was woken since it last looked: one consumer,
    /// so a slot rather than tokio's `Notify`, whose waiting future carries a list node inside
    /// every idle session's task (docs/benchmarks.md, idle sections).
    waker: AtomicWaker,
    woken: AtomicBool,
    /// What other tasks ask of the session besides deliveries (`handle::Signals` bits), set
    /// before the wake-up that makes it look. Here, in the outbox's padding, rather than a
    /// byte of the handle's own, which took the handle past jemalloc's 224-B class.
    signals: AtomicU8,
    /// The bounds as `u32` (a bound past 4 Gi is kept as 4 Gi): with them, the session handle
    /// that holds this outbox fits a 256-byte allocation (it was 264 B, a 320-byte size class
    /// under jemalloc; docs/benchmarks.md, "Fifth cuts").
    max_frames: u32,
    max_bytes: u32,
    policy: SlowConsumerPolicy,
}

/// What the session gets from one drain.
#[derive(Debug, Default)]
pub struct Drained {
    pub items: VecDeque<Outbound>,
    /// Frames `items` hold (a run is several).
    pub frames: usize,
    /// Approximate encoded size of `items`, to size the write batch once.
    pub bytes: usize,
    /// The bound was exceeded under the `Disconnect` policy: close with `slow consumer`.
    pub overflowed: bool,
}

impl Outbox {
    fn max_frames(&self) -> usize {
        self.max_frames as usize
    }

    fn max_bytes(&self) -> usize {
        self.max_bytes as usize
    }

    pub fn new(max_frames: usize, max_bytes: usize, policy: SlowConsumerPolicy) -> Self {
        Self {
            state: Mutex::new(State::default()),
            waker: AtomicWaker::new(),
            woken: AtomicBool::new(false),
            signals: AtomicU8::new(0),
            max_frames: u32::try_from(max_frames).unwrap_or(u32::MAX),
            max_bytes: u32::try_from(max_bytes).unwrap_or(u32::MAX),
            policy,
        }
    }

    pub fn try_push(&self, item: Outbound) -> Result<Pressure, (PushError, Outbound)> {
        let mut state = self.state.lock();
        let pushed = self.push_locked(&mut state, item);
        let pressure = self.pressure(&state);
        let wake = match &pushed {
            // Only the push that makes the queue non-empty wakes the session: until it
            // drains, that wake-up is pending and covers everything pushed after it.
            Ok(()) => state.items.len() == 1,
            Err((error, _)) => *error == PushError::Full && state.overflowed,
        };
        drop(state);
        if wake {
            self.wake();
        }
        pushed.map(|()| pressure)
    }

    /// Pushes a publisher's run of messages to one subscription: one lock and at most one
    /// wake-up for the run. When the whole run fits it goes in as one item; otherwise each
    /// message is pushed as [`Outbox::try_push`] would, so the bound is hit on the same
    /// message (the slow-consumer policy then acts on it, and under `Drop` a later, smaller
    /// message may still fit by bytes). Returns how many messages were queued, and the
    /// pressure after the push.
    pub fn try_push_run(&self, subscription: &SubscriptionId, run: &Arc<Run>) -> (usize, Pressure) {
        let mut state = self.state.lock();
        let (before, overflowed) = (state.items.len(), state.overflowed);
        let mut queued = 0;
        let whole = Outbound::Run(subscription.clone(), Arc::clone(run));
        if let Err((_, Outbound::Run(..))) = self.push_within(&mut state, whole) {
            for message in &run.messages {
                let item = crate::message::Delivery::to_subscription(subscription, message);
                if self
                    .push_locked(&mut state, Outbound::Deliver(item))
                    .is_ok()
                {
                    queued += 1;
                }
            }
        } else {
            queued = run.messages.len();
        }
        let pressure = self.pressure(&state);
        let wake = (before == 0 && !state.items.is_empty()) || (state.overflowed && !overflowed);
        drop(state);
        if wake {
            self.wake();
        }
        (queued, pressure)
    }

    /// Queues `item` if it fits within the bounds; refuses it otherwise without counting it
    /// against the slow-consumer policy (a run that does not fit is then pushed piece by
    /// piece, and the policy acts on the piece that overflows).
    fn push_within(&self, state: &mut State, item: Outbound) -> Result<(), (PushError, Outbound)> {
        if state.closed || state.overflowed {
            return Err((PushError::Closed, item));
        }
        let (frames, weight) = (item.frames(), item.weight());
        if state.frames as usize + frames > self.max_frames()
            || state.bytes + weight > self.max_bytes()
        {
            return Err((PushError::Full, item));
        }
        state.bytes += weight;
        state.frames += frames as u32;
        state.items.push_back(item);
        Ok(())
    }

    /// Queues `item`, or refuses it as the slow-consumer policy says (under `Disconnect` the
    /// outbox is then marked overflowed, and the caller wakes the session to close).
    fn push_locked(&self, state: &mut State, item: Outbound) -> Result<(), (PushError, Outbound)> {
        match self.push_within(state, item) {
            Err((PushError::Full, item)) => {
                let metrics = &crate::metrics::get().delivery;
                match self.policy {
                    SlowConsumerPolicy::Drop => metrics.dropped(DropReason::OutboxFull),
                    SlowConsumerPolicy::Disconnect => {
                        metrics.dropped(DropReason::SlowConsumer);
                        state.overflowed = true;
                    }
                }
                Err((PushError::Full, item))
            }
            pushed => pushed,
        }
    }

    /// `High` once the queue is past half of either bound.
    fn pressure(&self, state: &State) -> Pressure {
        if state.frames as usize > self.max_frames() / 2 || state.bytes > self.max_bytes() / 2 {
            Pressure::High
        } else {
            Pressure::Normal
        }
    }

    /// Pushes only while the queue is under half its bounds, and never counts as overflow:
    /// for traffic that is worthless late (typing indicators), the first thing dropped under
    /// pressure.
    pub fn try_push_droppable(&self, item: Outbound) -> bool {
        let weight = item.weight();
        {
            let mut state = self.state.lock();
            if state.closed || state.overflowed {
                return false;
            }
            if state.frames as usize >= self.max_frames() / 2
                || state.bytes + weight > self.max_bytes() / 2
            {
                crate::metrics::get()
                    .delivery
                    .dropped(DropReason::TypingShed);
                return false;
            }
            state.bytes += weight;
            state.frames += 1;
            state.items.push_back(item);
            if state.items.len() > 1 {
                return true;
            }
        }
        self.wake();
        true
    }

    /// Resolves when something was pushed since the last drain (cancel-safe: a wake-up that
    /// arrives while nobody waits is kept until the next poll). One task waits on an outbox.
    pub async fn ready(&self) {
        std::future::poll_fn(|cx| self.poll_ready(cx)).await;
    }

    pub fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.woken.swap(false, Ordering::AcqRel) {
            return Poll::Ready(());
        }
        self.waker.register(cx.waker());
        // A wake between the swap and the registration found no waker: it left the flag.
        if self.woken.swap(false, Ordering::AcqRel) {
            return Poll::Ready(());
        }
        Poll::Pending
    }

    /// Leaves `cx`'s waker for the next wake-up, without taking it: true when one is pending
    /// already (a parking session then stays awake, and its loop's `ready` takes it).
    pub fn register(&self, cx: &mut Context<'_>) -> bool {
        self.waker.register(cx.waker());
        self.woken.load(Ordering::Acquire)
    }

    /// Wakes the session without queueing anything: it has a signal to look at
    /// (`SessionHandle::take_signals`).
    pub fn wake(&self) {
        self.woken.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// Sets `bits` of the session's signals, then wakes it to look.
    pub fn signal(&self, bits: u8) {
        self.signals.fetch_or(bits, Ordering::AcqRel);
        self.wake();
    }

    /// The signals set since the last call, cleared.
    pub fn take_signals(&self) -> u8 {
        self.signals.swap(0, Ordering::AcqRel)
    }

    pub fn drain(&self) -> Drained {
        let mut state = self.state.lock();
        Drained {
            items: std::mem::take(&mut state.items),
            frames: std::mem::take(&mut state.frames) as usize,
            bytes: std::mem::take(&mut state.bytes),
            overflowed: state.overflowed,
        }
    }

    /// Refuses further pushes and returns what was still queued (so queue messages can go
    /// back to their queue).
    pub fn close(&self) -> VecDeque<Outbound> {
        let mut state = self.state.lock();
        state.closed = true;
        state.bytes = 0;
        state.frames = 0;
        std::mem::take(&mut state.items)
    }
}

#[cfg(test)]
mod tests;
