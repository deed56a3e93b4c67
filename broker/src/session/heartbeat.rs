//! Heart-beat negotiation (STOMP 1.2 "Heart-beating") and the two deadlines it implies.

use std::time::Duration;

use tokio::time::Instant;

use crate::config::HeartbeatConfig;

#[derive(Debug)]
pub struct Heartbeat {
    send_every: Option<Duration>,
    recv_timeout: Option<Duration>,
    last_sent: Instant,
    last_recv: Instant,
}

impl Heartbeat {
    /// From the client's `heart-beat: cx,cy` and the server's configuration, returns the
    /// server's `heart-beat` header value and the resulting schedule.
    pub fn negotiate(client: (u64, u64), server: &HeartbeatConfig) -> (String, Heartbeat) {
        let (cx, cy) = client;
        let sx = server.send.as_millis() as u64;
        let sy = server.recv.as_millis() as u64;
        let send_every = (sx > 0 && cy > 0).then(|| Duration::from_millis(sx.max(cy)));
        let recv_timeout = (cx > 0 && sy > 0)
            .then(|| Duration::from_millis(cx.max(sy)).mul_f64(server.grace.max(1.0)));
        let now = Instant::now();
        (
            format!("{sx},{sy}"),
            Heartbeat {
                send_every,
                recv_timeout,
                last_sent: now,
                last_recv: now,
            },
        )
    }

    /// When to send a heart-beat if nothing else is written before then.
    pub fn send_deadline(&self) -> Option<Instant> {
        self.send_every.map(|d| self.last_sent + d)
    }

    /// When the peer counts as dead if nothing arrives before then.
    pub fn recv_deadline(&self) -> Option<Instant> {
        self.recv_timeout.map(|d| self.last_recv + d)
    }

    pub fn recv_timeout_ms(&self) -> u64 {
        self.recv_timeout.map_or(0, |d| d.as_millis() as u64)
    }

    pub fn sent(&mut self) {
        self.last_sent = Instant::now();
    }

    pub fn received(&mut self) {
        self.last_recv = Instant::now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(send: u64, recv: u64) -> HeartbeatConfig {
        HeartbeatConfig {
            send: Duration::from_millis(send),
            recv: Duration::from_millis(recv),
            grace: 2.0,
        }
    }

    #[test]
    fn the_default_offer_honours_a_client_down_to_a_second() {
        let default = HeartbeatConfig::default();
        let (header, hb) = Heartbeat::negotiate((1000, 1000), &default);
        assert_eq!(header, "1000,1000");
        assert_eq!(hb.send_every, Some(Duration::from_millis(1000)));
        assert_eq!(hb.recv_timeout, Some(Duration::from_millis(2000)));

        let (_, hb) = Heartbeat::negotiate((5000, 20000), &default);
        assert_eq!(hb.send_every, Some(Duration::from_millis(20000)));
        assert_eq!(hb.recv_timeout, Some(Duration::from_millis(10000)));

        let (_, hb) = Heartbeat::negotiate((100, 200), &default);
        assert_eq!(hb.send_every, Some(Duration::from_millis(1000)));
        assert_eq!(hb.recv_timeout, Some(Duration::from_millis(2000)));
    }

    #[test]
    fn larger_interval_wins_and_zero_disables() {
        let (header, hb) = Heartbeat::negotiate((5000, 20000), &server(10000, 10000));
        assert_eq!(header, "10000,10000");
        assert_eq!(hb.send_every, Some(Duration::from_millis(20000)));
        assert_eq!(hb.recv_timeout, Some(Duration::from_millis(20000)));

        let (_, hb) = Heartbeat::negotiate((0, 0), &server(10000, 10000));
        assert!(hb.send_every.is_none() && hb.recv_timeout.is_none());

        let (_, hb) = Heartbeat::negotiate((1000, 1000), &server(0, 0));
        assert!(hb.send_every.is_none() && hb.recv_timeout.is_none());
    }
}
