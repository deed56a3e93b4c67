//! A session's bounded outbound queue: the only way anything reaches a session from outside.
//!
//! Routers and queues push without ever waiting (`try_push`); the session task drains the
//! whole queue at once and writes it as one batch. The queue is bounded in frames and bytes;
//! what happens when it is full is the configured [`SlowConsumerPolicy`]. An idle session's
//! outbox holds no allocation (an empty `VecDeque` does not allocate).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;
use parking_lot::Mutex;

use crate::config::SlowConsumerPolicy;
use crate::message::Delivery;
use crate::metrics::delivery::DropReason;

#[derive(Debug)]
pub enum Outbound {
    Deliver(Delivery),
    /// A frame for this session only, encoded by it (a RECEIPT that had to wait for storage).
    Frame(stomp_codec::Frame),
}

impl Outbound {
    fn weight(&self) -> usize {
        match self {
            Outbound::Deliver(d) => d.message.weight(),
            Outbound::Frame(f) => 64 + f.body.len(),
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
            max_frames: u32::try_from(max_frames).unwrap_or(u32::MAX),
            max_bytes: u32::try_from(max_bytes).unwrap_or(u32::MAX),
            policy,
        }
    }

    pub fn try_push(&self, item: Outbound) -> Result<Pressure, (PushError, Outbound)> {
        let weight = item.weight();
        let pressure = {
            let mut state = self.state.lock();
            if state.closed || state.overflowed {
                return Err((PushError::Closed, item));
            }
            if state.items.len() >= self.max_frames() || state.bytes + weight > self.max_bytes() {
                let metrics = &crate::metrics::get().delivery;
                match self.policy {
                    SlowConsumerPolicy::Drop => {
                        metrics.dropped(DropReason::OutboxFull);
                        return Err((PushError::Full, item));
                    }
                    SlowConsumerPolicy::Disconnect => {
                        metrics.dropped(DropReason::SlowConsumer);
                        state.overflowed = true;
                    }
                }
                drop(state);
                self.wake();
                return Err((PushError::Full, item));
            }
            state.bytes += weight;
            state.items.push_back(item);
            let pressure = if state.items.len() > self.max_frames() / 2
                || state.bytes > self.max_bytes() / 2
            {
                Pressure::High
            } else {
                Pressure::Normal
            };
            // Only the push that makes the queue non-empty wakes the session: until it drains,
            // that wake-up is pending and covers everything pushed after it.
            if state.items.len() > 1 {
                return Ok(pressure);
            }
            pressure
        };
        self.wake();
        Ok(pressure)
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
            if state.items.len() >= self.max_frames() / 2
                || state.bytes + weight > self.max_bytes() / 2
            {
                crate::metrics::get()
                    .delivery
                    .dropped(DropReason::TypingShed);
                return false;
            }
            state.bytes += weight;
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

    pub fn drain(&self) -> Drained {
        let mut state = self.state.lock();
        Drained {
            items: std::mem::take(&mut state.items),
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
        std::mem::take(&mut state.items)
    }
}
