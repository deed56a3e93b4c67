//! Parking: an idle session kept outside any task, as a boxed record woken by its socket, its
//! outbox and its deadline.
//!
//! Why: a tokio task is a 128-byte-aligned cell holding the session's whole future, its
//! header and its trailer, for as long as the task lives (≈ 1.3–1.5 KiB per connection, the
//! largest item in an idle connection's memory; docs/benchmarks.md, idle sections). Most
//! connections of a chat are idle most of the time: between heart-beats they need their state
//! and three registrations, not a task. A session that has been quiet for [`QUIET`] hands
//! its [`Resident`] state to a [`Parked`] record and its task ends; the first wake-up (bytes
//! or EOF on the socket, a delivery or signal in the outbox, the next deadline) spawns a task
//! that resumes the session's loop where it left off.
//!
//! The three registrations are the ones an active session makes too, with the record's waker
//! instead of the task's: the socket's reactor slot (a read polled once, which also leaves its
//! waker there), the outbox's waker slot, and the broker's timer ([`crate::wakeup`]). Whatever
//! is ready while parking is not lost: the outbox is only peeked, a read that completes is kept
//! in the wire for the loop, and a passed deadline stays passed.

use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use parking_lot::Mutex;

/// What can be parked: the session's resident state (`session::Resident`).
pub(super) trait Parkable: Send + Sized + 'static {
    /// Registers every wake-up with `cx`'s waker; true when one is ready already.
    fn register(&mut self, cx: &mut Context<'_>) -> bool;

    /// Carries on in a task of its own after a wake-up, on the runtime it was parked from.
    /// Wake-ups come from any thread (the reactor, a publisher's task, the timer task, a
    /// store's callback thread): the parked state knows its runtime, so that the record
    /// need not carry a handle of its own (16 B per parked session: the record is then 40 B,
    /// in the allocator's 48-B class rather than 64).
    fn resume(self: Box<Self>);
}

/// How long a session stays in its task after its last frame or delivery: long enough that a
/// busy session (a live topic's subscriber, a publisher, a conversation) is not parked and
/// respawned for every message (a park and a resume cost a spawn and three registrations),
/// short enough that a connection that only heart-beats is parked within a second of going
/// quiet. (250 ms measured no lower RSS in the idle run: docs/benchmarks.md, "Fourth cuts".)
pub(super) const QUIET: Duration = Duration::from_secs(1);

/// A parked session, and the waker its registrations hold.
pub(super) struct Parked<R> {
    stage: Mutex<Stage<R>>,
}

enum Stage<R> {
    /// Registering; `woken` if a wake-up came meanwhile (the session then resumes at once).
    Parking {
        woken: bool,
    },
    Parked(Box<R>),
    /// Resumed: later wake-ups (stale registrations) do nothing.
    Resumed,
}

/// What [`park`] did with the session.
pub(super) enum Parking<R> {
    /// The session is parked; its task may end.
    Parked,
    /// Something is ready already: the session carries on in this task.
    Resumed(Box<R>),
}

/// Registers the session's three wake-ups with a parked record's waker, then parks it, unless
/// one of them is ready already or fires while registering.
pub(super) fn park<R: Parkable>(mut resident: Box<R>) -> Parking<R> {
    let parked = Arc::new(Parked {
        stage: Mutex::new(Stage::Parking { woken: false }),
    });
    let waker = Waker::from(Arc::clone(&parked));
    if resident.register(&mut Context::from_waker(&waker)) {
        return resume_here(&parked, resident);
    }
    let mut stage = parked.stage.lock();
    match *stage {
        Stage::Parking { woken: true } => {
            drop(stage);
            resume_here(&parked, resident)
        }
        _ => {
            *stage = Stage::Parked(resident);
            crate::metrics::get().session.parked.inc();
            Parking::Parked
        }
    }
}

/// Carries on in the current task: the record is done with, and its registrations are
/// replaced by the task's (`session::Resident::run`).
fn resume_here<R>(parked: &Parked<R>, resident: Box<R>) -> Parking<R> {
    *parked.stage.lock() = Stage::Resumed;
    Parking::Resumed(resident)
}

impl<R: Parkable> Wake for Parked<R> {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let resident = {
            let mut stage = self.stage.lock();
            match std::mem::replace(&mut *stage, Stage::Resumed) {
                Stage::Parked(resident) => {
                    crate::metrics::get().session.parked.dec();
                    resident
                }
                Stage::Parking { .. } => {
                    *stage = Stage::Parking { woken: true };
                    return;
                }
                Stage::Resumed => return,
            }
        };
        resident.resume();
    }
}

/// Polls `read` once with `cx`: its outcome if it completed, and its waker registration left
/// behind either way (the transports' reads keep their wakers in the socket or channel, not
/// in the future).
pub(super) fn poll_once<F: Future>(read: F, cx: &mut Context<'_>) -> Option<F::Output> {
    match pin!(read).poll(cx) {
        Poll::Ready(output) => Some(output),
        Poll::Pending => None,
    }
}
