//! The message body every scenario sends: `stream seq send-time-ns` then padding, so a
//! receiver can attribute, order-check and time each message without extra headers.

use std::sync::OnceLock;
use std::time::Instant;

/// Process-wide zero for timestamps; publishers and subscribers share one process and clock.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Nanoseconds since the process epoch.
pub fn now_ns() -> u64 {
    epoch().elapsed().as_nanos() as u64
}

/// What a body says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub stream: u64,
    pub seq: u64,
    pub sent_ns: u64,
}

impl Stamp {
    /// The body bytes, padded with `x` to `size` (never shorter than the stamp itself).
    pub fn body(&self, size: usize) -> Vec<u8> {
        let mut body = format!("{} {} {} ", self.stream, self.seq, self.sent_ns).into_bytes();
        if body.len() < size {
            body.resize(size, b'x');
        }
        body
    }
}

impl TryFrom<&[u8]> for Stamp {
    type Error = ();

    fn try_from(body: &[u8]) -> Result<Self, ()> {
        let mut fields = body.split(|b| *b == b' ').map(|f| {
            std::str::from_utf8(f)
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
        });
        let mut next = || fields.next().flatten().ok_or(());
        Ok(Stamp {
            stream: next()?,
            seq: next()?,
            sent_ns: next()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_round_trips_through_padded_body() {
        let s = Stamp {
            stream: 7,
            seq: 42,
            sent_ns: 123_456_789,
        };
        let body = s.body(128);
        assert_eq!(body.len(), 128);
        assert_eq!(Stamp::try_from(body.as_slice()), Ok(s));
    }
}
