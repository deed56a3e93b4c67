//! Heart-beat negotiation (STOMP 1.2 "Heart-beating") and the two deadlines it implies.

use std::time::Duration;

use crate::config::HeartbeatConfig;
use crate::moment::Moment;

/// The intervals are kept in milliseconds (`u32`: 49 days), not as `Option<Duration>` (16 B
/// each): every session holds this for its life, idle or not. 0 is off.
#[derive(Debug)]
pub struct Heartbeat {
    send_every_ms: u32,
    recv_timeout_ms: u32,
    /// Moments (8 B), not `Instant`s (16 B): every session keeps them for its life.
    last_sent: Moment,
    last_recv: Moment,
}

/// Milliseconds as kept here; 0 (off) for `None`, saturated past `u32::MAX`.
fn millis(interval: Option<Duration>) -> u32 {
    interval.map_or(0, |d| u32::try_from(d.as_millis()).unwrap_or(u32::MAX))
}

/// The interval `ms` stands for: `None` for 0 (off).
fn interval(ms: u32) -> Option<Duration> {
    (ms > 0).then(|| Duration::from_millis(u64::from(ms)))
}

impl Heartbeat {
    /// From the client's `heart-beat: cx,cy` and the server's configuration, returns the
    /// server's `heart-beat` header value and the resulting schedule.
    ///
    /// Each direction is on when both sides' figures are non-zero, at the client's figure
    /// floored at `--heartbeat-min` (or at the offer, when that is lower): the client gets the
    /// beats it asks for, as RabbitMQ honours a client's figures, where STOMP's "larger figure
    /// wins" would impose the server's. The header carries the intervals chosen, so a client
    /// applying STOMP's rule to it computes the same ones.
    pub fn negotiate(
        client: (u64, u64),
        server: &HeartbeatConfig,
        now: Moment,
    ) -> (String, Heartbeat) {
        let (cx, cy) = client;
        let sx = server.send.as_millis() as u64;
        let sy = server.recv.as_millis() as u64;
        let min = server.min.as_millis() as u64;
        // The interval for one direction: the asking side's figure, floored.
        let interval =
            |ours: u64, theirs: u64| (ours > 0 && theirs > 0).then(|| theirs.max(min.min(ours)));
        let send_ms = interval(sx, cy);
        let recv_ms = interval(sy, cx);
        (
            format!("{},{}", send_ms.unwrap_or(sx), recv_ms.unwrap_or(sy)),
            Heartbeat {
                send_every_ms: millis(send_ms.map(Duration::from_millis)),
                recv_timeout_ms: millis(
                    recv_ms.map(|ms| Duration::from_millis(ms).mul_f64(server.grace.max(1.0))),
                ),
                last_sent: now,
                last_recv: now,
            },
        )
    }

    /// How often the server sends, if it does.
    pub fn send_every(&self) -> Option<Duration> {
        interval(self.send_every_ms)
    }

    /// How long the peer may stay silent (its interval × grace), if it must beat at all.
    pub fn recv_timeout(&self) -> Option<Duration> {
        interval(self.recv_timeout_ms)
    }

    /// When to send a heart-beat if nothing else is written before then.
    pub fn send_deadline(&self) -> Option<Moment> {
        self.send_every().map(|d| self.last_sent + d)
    }

    /// When the peer counts as dead if nothing arrives before then.
    pub fn recv_deadline(&self) -> Option<Moment> {
        self.recv_timeout().map(|d| self.last_recv + d)
    }

    pub fn recv_timeout_ms(&self) -> u64 {
        u64::from(self.recv_timeout_ms)
    }

    pub fn sent(&mut self, now: Moment) {
        self.last_sent = now;
    }

    pub fn received(&mut self, now: Moment) {
        self.last_recv = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(send: u64, recv: u64) -> HeartbeatConfig {
        HeartbeatConfig {
            send: Duration::from_millis(send),
            recv: Duration::from_millis(recv),
            min: Duration::from_secs(1),
            grace: 2.0,
        }
    }

    #[test]
    fn the_default_offer_honours_a_client_down_to_a_second() {
        let default = HeartbeatConfig::default();
        let (header, hb) = Heartbeat::negotiate((1000, 1000), &default, Moment::ORIGIN);
        assert_eq!(header, "1000,1000");
        assert_eq!(hb.send_every(), Some(Duration::from_millis(1000)));
        assert_eq!(hb.recv_timeout(), Some(Duration::from_millis(2000)));

        let (header, hb) = Heartbeat::negotiate((5000, 20000), &default, Moment::ORIGIN);
        assert_eq!(header, "20000,5000");
        assert_eq!(hb.send_every(), Some(Duration::from_millis(20000)));
        assert_eq!(hb.recv_timeout(), Some(Duration::from_millis(10000)));

        let (header, hb) = Heartbeat::negotiate((100, 200), &default, Moment::ORIGIN);
        assert_eq!(header, "1000,1000");
        assert_eq!(hb.send_every(), Some(Duration::from_millis(1000)));
        assert_eq!(hb.recv_timeout(), Some(Duration::from_millis(2000)));
    }

    #[test]
    fn a_faster_ask_than_the_offer_is_honoured_down_to_the_floor() {
        let (header, hb) =
            Heartbeat::negotiate((1500, 1000), &server(10000, 10000), Moment::ORIGIN);
        assert_eq!(header, "1000,1500", "the client's figures, not the offer's");
        assert_eq!(hb.send_every(), Some(Duration::from_millis(1000)));
        assert_eq!(hb.recv_timeout(), Some(Duration::from_millis(3000)));

        let (header, _) = Heartbeat::negotiate((10, 10), &server(10000, 10000), Moment::ORIGIN);
        assert_eq!(header, "1000,1000", "floored at --heartbeat-min");

        // An offer below the floor is its own floor (tests and labs beat every 200 ms).
        let (header, hb) = Heartbeat::negotiate((100, 200), &server(200, 300), Moment::ORIGIN);
        assert_eq!(header, "200,300");
        assert_eq!(hb.send_every(), Some(Duration::from_millis(200)));
        assert_eq!(hb.recv_timeout(), Some(Duration::from_millis(600)));
    }

    #[test]
    fn larger_interval_wins_and_zero_disables() {
        let (header, hb) =
            Heartbeat::negotiate((25000, 20000), &server(10000, 10000), Moment::ORIGIN);
        assert_eq!(header, "20000,25000");
        assert_eq!(hb.send_every(), Some(Duration::from_millis(20000)));
        assert_eq!(hb.recv_timeout(), Some(Duration::from_millis(50000)));

        let (header, hb) = Heartbeat::negotiate((0, 0), &server(10000, 10000), Moment::ORIGIN);
        assert_eq!(header, "10000,10000");
        assert!(hb.send_every().is_none() && hb.recv_timeout().is_none());

        let (header, hb) = Heartbeat::negotiate((1000, 1000), &server(0, 0), Moment::ORIGIN);
        assert_eq!(header, "0,0");
        assert!(hb.send_every().is_none() && hb.recv_timeout().is_none());

        let (header, hb) = Heartbeat::negotiate((1000, 0), &server(10000, 0), Moment::ORIGIN);
        assert_eq!(header, "10000,0", "neither direction is on");
        assert!(hb.send_every().is_none() && hb.recv_timeout().is_none());
    }
}
