//! Monotonic time as per-connection state keeps it: a [`Moment`] is microseconds since the
//! broker's start ([`Clock`]) in 8 bytes, where a `tokio::time::Instant` takes 16 and an
//! `Option<Instant>` 16 as well.
//!
//! Why: every connection keeps its times for its whole life, idle or not — when it last sent
//! and heard a heart-beat, when it last told the application it was active, when its token
//! expires, when its quiet period ends, when a paused publisher may read again, and its
//! deadline's key in the shared timer (`crate::wakeup`). As `Instant`s they were 128 B of the
//! parked session's state; as moments they are 64 B, which is what brought that state from
//! jemalloc's 512-B size class to 384 (docs/benchmarks.md, "Seventh cuts").
//!
//! A moment is relative to one broker's clock, read through `tokio::time::Instant`, so paused
//! test clocks drive it as they drive everything else; moments of two brokers do not mix. In
//! a `u64` of microseconds it does not wrap (585,000 years); adding saturates, so a far
//! deadline (a token's `exp` in the distant future) is a far moment, never a panic.

use std::num::NonZeroU64;
use std::ops::Add;
use std::time::Duration;

use tokio::time::Instant;

/// The furthest an [`Instant`] made from a moment lies ahead: `Instant + Duration` panics on
/// overflow, and beyond a century is never in practice.
const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// One broker's time origin: moments count from here.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    epoch: Instant,
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock {
    /// A clock whose origin is now (on the current runtime's clock, paused or not).
    pub fn new() -> Self {
        Self {
            epoch: Instant::now(),
        }
    }

    pub fn now(&self) -> Moment {
        self.moment(Instant::now())
    }

    /// `at` as a moment of this clock (the origin, if `at` is before it).
    pub fn moment(&self, at: Instant) -> Moment {
        Moment::ORIGIN + at.saturating_duration_since(self.epoch)
    }

    /// `at` as an instant, to sleep until (at most a century ahead of the origin).
    pub fn instant(&self, at: Moment) -> Instant {
        let since = Duration::from_micros(at.micros()).min(CENTURY);
        self.epoch + since
    }
}

/// A point in time: microseconds since a [`Clock`]'s origin, plus one, so that
/// `Option<Moment>` is 8 B too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Moment(NonZeroU64);

impl Moment {
    /// The clock's origin.
    pub const ORIGIN: Moment = Moment(NonZeroU64::MIN);

    fn micros(self) -> u64 {
        self.0.get() - 1
    }

    /// How long after `earlier` this is (zero if it is not after it).
    pub fn since(self, earlier: Moment) -> Duration {
        Duration::from_micros(self.0.get().saturating_sub(earlier.0.get()))
    }
}

impl Add<Duration> for Moment {
    type Output = Moment;

    /// Saturating: a moment beyond 585,000 years is the last one.
    fn add(self, d: Duration) -> Moment {
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        Moment(self.0.saturating_add(micros))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_optional_moment_is_eight_bytes() {
        assert_eq!(std::mem::size_of::<Option<Moment>>(), 8);
    }

    #[tokio::test(start_paused = true)]
    async fn moments_follow_the_runtime_clock_and_convert_back() {
        let clock = Clock::new();
        let start = clock.now();
        assert_eq!(start, Moment::ORIGIN);
        tokio::time::advance(Duration::from_micros(1_500)).await;
        let later = clock.now();
        assert_eq!(later.since(start), Duration::from_micros(1_500));
        assert_eq!(start.since(later), Duration::ZERO);
        assert_eq!(clock.instant(later), Instant::now());
        assert_eq!(clock.moment(Instant::now()), later);
    }

    #[test]
    fn a_far_deadline_saturates_instead_of_panicking() {
        let clock = Clock::new();
        let far = clock.now() + Duration::MAX;
        assert!(far > clock.now() + Duration::from_secs(1 << 40));
        assert!(clock.instant(far) > Instant::now() + Duration::from_secs(3600 * 24 * 365));
    }
}
