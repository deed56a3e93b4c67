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

    /// Reads the three numbers digit by digit: this runs for every delivery the generator
    /// receives, on the cores the broker under test shares (UTF-8 checks and `str::parse` were
    /// a fifth of the generator's CPU at a million deliveries a second).
    fn try_from(body: &[u8]) -> Result<Self, ()> {
        let mut rest = body;
        let mut next = || -> Result<u64, ()> {
            let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
            if digits == 0 || rest.get(digits).is_some_and(|b| *b != b' ') {
                return Err(());
            }
            let n = rest[..digits].iter().try_fold(0u64, |n, d| {
                n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
            });
            let n = n.ok_or(())?;
            rest = rest.get(digits + 1..).unwrap_or_default();
            Ok(n)
        };
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

    #[test]
    fn stamp_is_read_from_short_and_odd_bodies() {
        let s = Stamp {
            stream: u64::from(u32::MAX) << 32,
            seq: 0,
            sent_ns: 9_999_999_999_999_999_999,
        };
        // Shorter than the stamp: not padded, no trailing space cut off.
        assert_eq!(Stamp::try_from(s.body(0).as_slice()), Ok(s));
        assert_eq!(
            Stamp::try_from(&b"1 2 3"[..]),
            Ok(Stamp {
                stream: 1,
                seq: 2,
                sent_ns: 3
            })
        );
        let too_big = b"1 2 18446744073709551616";
        for bad in [
            &b""[..],
            b"1 2",
            b"1 x 3",
            b"1 2 3x",
            b"-1 2 3",
            b"1  2 3",
            too_big,
        ] {
            assert_eq!(Stamp::try_from(bad), Err(()), "{bad:?}");
        }
    }
}
