//! Publisher back-pressure for fan-out. The router never waits for a subscriber; instead a
//! publisher whose messages land in outboxes past half full stops reading its own socket for a
//! moment, so a burst is paced to what subscribers drain (TCP back-pressure then reaches the
//! publishing client) rather than overflowing them into slow-consumer disconnects. A subscriber
//! that is truly stuck still overflows and is disconnected: the pause is short and capped, so one
//! stuck subscriber slows a topic's publishers only until the policy removes it.
//!
//! The same pause carries the per-user send rate (`--send-rate`): a SEND past the rate is
//! routed, and the session then reads nothing until the user's bucket has repaid it.

use std::time::Duration;

use crate::moment::{Clock, Moment};

/// First pause after a pressed publish.
const FIRST_PAUSE: Duration = Duration::from_micros(500);
/// Longest pause: keeps a publisher reading at least 100 times a second, so a stuck subscriber
/// still fills up and is cut off within a second or so.
const MAX_PAUSE: Duration = Duration::from_millis(10);

/// The current pause is kept in microseconds (`u32`, ≤ [`MAX_PAUSE`]), not as a `Duration`
/// (16 B), and its end as a [`Moment`] (8 B), not an `Option<Instant>` (16 B): every session
/// holds this for its life, idle or not.
#[derive(Debug, Default)]
pub struct Throttle {
    resume_at: Option<Moment>,
    pause_us: u32,
}

impl Throttle {
    /// Records whether the last publish pressed a subscriber; pauses grow while it keeps
    /// happening and reset as soon as a publish finds room.
    pub fn after_publish(&mut self, pressed: bool, clock: &Clock) {
        if pressed {
            let pause =
                (Duration::from_micros(u64::from(self.pause_us)) * 2).clamp(FIRST_PAUSE, MAX_PAUSE);
            // ≤ MAX_PAUSE, so it fits.
            self.pause_us = u32::try_from(pause.as_micros()).unwrap_or(u32::MAX);
            self.pause_for(pause, clock);
            crate::metrics::get().delivery.paused(pause);
        } else {
            self.pause_us = 0;
        }
    }

    /// Reading pauses for `pause` from now, unless it is paused for longer already.
    pub fn pause_for(&mut self, pause: Duration, clock: &Clock) {
        let until = clock.now() + pause;
        self.resume_at = Some(self.resume_at.map_or(until, |at| at.max(until)));
    }

    /// Until when reading is paused, if it is.
    pub fn resume_at(&self) -> Option<Moment> {
        self.resume_at
    }

    pub fn resume(&mut self) {
        self.resume_at = None;
    }
}
