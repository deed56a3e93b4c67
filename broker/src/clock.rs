//! Wall-clock time as the broker writes it: milliseconds since the Unix epoch (message ids,
//! presence's last-seen, chat timestamps). One helper, so every part agrees on the unit and on
//! what a clock before 1970 reads as.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch; 0 if the system clock is set before it (never an error:
/// callers stamp events, and a wrong stamp is better than a lost event).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Microseconds since the Unix epoch (0 before it): the cluster envelope's publish time, from
/// which the receiving node measures propagation below a millisecond.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}
