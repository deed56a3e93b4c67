//! Wall-clock time in milliseconds, for records' and markers' timestamps.

use std::time::SystemTime;

/// Milliseconds since the Unix epoch (0 for a clock set before it).
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
