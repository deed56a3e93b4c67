//! Connections and what crosses them: sessions open by transport, connects, closes by
//! [`CloseReason`], frames by command, bytes, failed logins by reason.

use prometheus::{IntCounter, IntCounterVec, IntGauge};
use stomp_codec::Command;

use super::register::Register;
use crate::close::CloseReason;

/// The transports, as `Transport::kind` names them.
const TRANSPORTS: [&str; 4] = ["tcp", "ws", "tls", "wss"];

pub struct SessionMetrics {
    open: [IntGauge; 4],
    connects: [IntCounter; 4],
    closes: IntCounterVec,
    frames_in: [IntCounter; 15],
    frames_out: [IntCounter; 15],
    pub bytes_in: IntCounter,
    pub bytes_out: IntCounter,
    auth_failures: IntCounterVec,
    users_by_sessions: [IntGauge; 6],
    user_sessions_max: IntGauge,
    /// Sessions parked outside any task (quiet for a second; `session::park`).
    pub parked: IntGauge,
}

/// Bands of sessions per user for `stompbox_users_by_sessions`: a handful of series whatever
/// the number of users (never a label per user).
const SESSION_BANDS: [(usize, &str); 6] = [
    (1, "1"),
    (2, "2"),
    (5, "3-5"),
    (10, "6-10"),
    (100, "11-100"),
    (usize::MAX, "101+"),
];

fn transport_index(kind: &str) -> usize {
    TRANSPORTS.iter().position(|t| *t == kind).unwrap_or(0)
}

/// `Command::ALL` is in declaration order (a unit test checks), so `command as usize` indexes
/// arrays built from it.
fn per_command(vec: &IntCounterVec) -> [IntCounter; 15] {
    Command::ALL.map(|c| vec.with_label_values(&[c.as_str()]))
}

impl SessionMetrics {
    pub(super) fn new(r: &Register<'_>) -> Self {
        let open = r.gauges(
            "stompbox_connections_open",
            "Connections open, from accept to close, by transport",
            &["transport"],
        );
        let connects = r.counters(
            "stompbox_connects_total",
            "Sessions that reached CONNECTED, by transport",
            &["transport"],
        );
        let frames_in = r.counters(
            "stompbox_frames_received_total",
            "STOMP frames received from clients, by command",
            &["command"],
        );
        let frames_out = r.counters(
            "stompbox_frames_sent_total",
            "STOMP frames queued to clients, by command",
            &["command"],
        );
        let users = r.gauges(
            "stompbox_users_by_sessions",
            "Users connected to this node, by how many sessions each has (read at scrape time)",
            &["sessions"],
        );
        Self {
            users_by_sessions: SESSION_BANDS.map(|(_, band)| users.with_label_values(&[band])),
            user_sessions_max: r.gauge(
                "stompbox_user_sessions_max",
                "Sessions of the user with the most on this node (read at scrape time)",
            ),
            open: TRANSPORTS.map(|t| open.with_label_values(&[t])),
            connects: TRANSPORTS.map(|t| connects.with_label_values(&[t])),
            closes: r.counters(
                "stompbox_closes_total",
                "Connections closed, by why (close::CloseReason)",
                &["reason"],
            ),
            frames_in: per_command(&frames_in),
            frames_out: per_command(&frames_out),
            bytes_in: r.counter(
                "stompbox_received_bytes_total",
                "STOMP bytes read from clients (inside TLS and WebSocket framing)",
            ),
            bytes_out: r.counter(
                "stompbox_sent_bytes_total",
                "STOMP bytes written to clients (inside TLS and WebSocket framing)",
            ),
            auth_failures: r.counters(
                "stompbox_auth_failures_total",
                "CONNECTs refused for their credentials, by reason",
                &["reason"],
            ),
            parked: r.gauge(
                "stompbox_sessions_parked",
                "Sessions quiet for a second or more, waiting parked outside any task",
            ),
        }
    }

    /// A connection was accepted on `transport`: it counts open until [`Self::ended`] (the
    /// session's `Wire` calls both: opened when made, ended when dropped, however the
    /// connection ends; no guard of its own in every session's state).
    pub fn opened(&self, transport: &str) {
        self.open[transport_index(transport)].inc();
    }

    /// A connection that [`Self::opened`] counted is gone.
    pub fn ended(&self, transport: &str) {
        self.open[transport_index(transport)].dec();
    }

    pub fn connected(&self, transport: &str) {
        self.connects[transport_index(transport)].inc();
    }

    /// Once per connection, with why it ended (a handshake that failed included).
    pub fn closed(&self, reason: &CloseReason) {
        self.closes.with_label_values(&[reason.label()]).inc();
    }

    pub fn frame_in(&self, command: Command) {
        self.frames_in[command as usize].inc();
    }

    pub fn frame_out(&self, command: Command) {
        self.frames_out[command as usize].inc();
    }

    /// `n` frames of one command written at once (a drain's MESSAGEs, counted once).
    pub fn frames_out(&self, command: Command, n: u64) {
        self.frames_out[command as usize].inc_by(n);
    }

    /// A CONNECT refused; `reason` is one of a fixed set of names (`auth_reason` in
    /// `session/connect.rs`).
    pub fn auth_failed(&self, reason: &'static str) {
        self.auth_failures.with_label_values(&[reason]).inc();
    }
}

impl SessionMetrics {
    /// Sets the sessions-per-user gauges from the owners of every session on this node (at
    /// scrape time: one pass over the sessions, nothing kept per user between scrapes).
    pub fn count_users<'a>(&self, owners: impl Iterator<Item = &'a str>) {
        let mut per_user: std::collections::HashMap<&str, usize> = Default::default();
        for owner in owners {
            *per_user.entry(owner).or_default() += 1;
        }
        let mut bands = [0i64; 6];
        let mut max = 0;
        for &n in per_user.values() {
            max = max.max(n);
            let band = SESSION_BANDS.iter().position(|(upto, _)| n <= *upto);
            bands[band.unwrap_or(5)] += 1;
        }
        for (gauge, n) in self.users_by_sessions.iter().zip(bands) {
            gauge.set(n);
        }
        self.user_sessions_max
            .set(i64::try_from(max).unwrap_or(i64::MAX));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_all_is_in_declaration_order() {
        for (i, c) in Command::ALL.iter().enumerate() {
            assert_eq!(*c as usize, i, "{c:?}");
        }
    }
}
