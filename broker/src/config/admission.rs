//! Admission settings: what one address may open and how fast, how many connections may sit
//! unauthenticated, which addresses are exempt or trusted to name the client, and how failed
//! logins are throttled. docs/security/admission.md says what each protects against.

use std::time::Duration;

use super::cidr::Cidr;
use super::error::ConfigError;
use super::limits::Limits;
use super::setting::settings;

settings! {
    /// Limits on what a client may do before and at CONNECT.
    pub struct AdmissionSettings, layer AdmissionLayer, heading Some("Admission");

    /// Connections one address holds at once (an IPv6 client counts by its /64). 100 lets an
    /// office or a carrier NAT keep many users behind one address, while one host cannot take
    /// a node's descriptors.
    max_connections_per_ip: usize = 100,
        "N", "Concurrent connections from one address (IPv6: one /64)";
    /// New connections per second from one address, once its burst is spent: a reconnect
    /// loop or a flood from one host is slowed to this.
    connect_rate_per_ip: f64 = 10.0,
        "PER_SECOND", "New connections per second from one address, after its burst";
    /// New connections one address may open at once before the rate applies: half the
    /// per-address cap, so a NAT's users come back together after a restart.
    connect_burst_per_ip: usize = 50,
        "N", "New connections one address may open at once before the rate applies";
    /// Addresses no per-address limit applies to, nor the unauthenticated cap nor the per-
    /// address login throttle. Loopback by default: the host itself, the benchmarks and tests,
    /// and a reverse proxy on the same host (whose clients are told apart by
    /// `trusted_proxy`). `--admission-exempt=` exempts nothing.
    admission_exempt: Vec<Cidr> = Cidr::loopback(),
        "CIDR", "Addresses exempt from per-address limits; repeat or comma-separate; empty for none";
    /// Peers whose `X-Forwarded-For` / `X-Real-IP` names the client of a WebSocket upgrade.
    /// Loopback by default, where the shipped nginx config runs; a header from any other peer
    /// is ignored, so a client cannot pick the address it is counted as.
    trusted_proxy as "trusted_proxy" | "trusted_proxies": Vec<Cidr> = Cidr::loopback(),
        "CIDR", "Proxies trusted to name the client in X-Forwarded-For/X-Real-IP (WebSocket); repeat or comma-separate";
    /// Addresses tracked at once for the per-address limits; idle ones are forgotten first.
    /// About 100 bytes each, so the default bounds the table near 7 MiB under a flood from
    /// many addresses. Above `max_connections`, so every connected address fits.
    max_tracked_addresses: usize = 65_536,
        "N", "Addresses tracked for the per-address limits";
    /// Connections that have not finished CONNECT, node-wide. Legitimate clients pass through
    /// in milliseconds (a password check in tens); a slowloris flood from many addresses
    /// fills this instead of the connection limit, and each slot frees by `connect_timeout`.
    max_unauthenticated: usize = 1024,
        "N", "Connections that have not completed CONNECT, node-wide";
    /// Connections from one address that have not finished CONNECT. Without it, a slowloris
    /// from a dozen addresses would fill `max_unauthenticated`; with it, it takes a hundred.
    /// Ten is plenty for a NAT's users connecting at once: each is unauthenticated for
    /// milliseconds, or while its password check queues.
    max_unauthenticated_per_ip: usize = 10,
        "N", "Connections from one address that have not completed CONNECT";
    /// Failed logins for one user name before its CONNECTs are refused for a while (from
    /// addresses that have failed too: see `login_backoff_max`).
    login_failures_per_user: usize = 5,
        "N", "Failed logins for one user before further attempts are refused for a while";
    /// Failed logins from one address before its CONNECTs are refused for a while. Higher
    /// than per user: one address may carry many users (NAT).
    login_failures_per_ip: usize = 20,
        "N", "Failed logins from one address before its attempts are refused for a while";
    /// A user's or an address's failures are forgotten this long after the last one.
    login_failure_window: Duration = Duration::from_secs(15 * 60),
        "DURATION", "How long failed logins are remembered after the last one";
    /// The first refusal after the limit; it doubles with each further failure (a CONNECT
    /// refused by the throttle costs no password check and does not count). 1 s slows a
    /// guesser to a crawl within a few doublings while a user's typos cost seconds.
    login_backoff: Duration = Duration::from_secs(1),
        "DURATION", "First refusal after too many failed logins; doubles with each further failure";
    /// The bound of the doubling: a user who mistyped long ago waits at most this long.
    login_backoff_max: Duration = Duration::from_secs(15 * 60),
        "DURATION", "Longest refusal after repeated failed logins";
}

impl AdmissionSettings {
    /// Counts of 0 would refuse everyone; a rate of 0 would admit each address `burst` times
    /// in its life; a table smaller than the connection limit could fill with connected
    /// addresses and refuse new ones.
    pub(super) fn validate(&self, limits: &Limits) -> Result<(), ConfigError> {
        if self.max_tracked_addresses <= limits.max_connections {
            return Err(ConfigError::Invalid {
                key: "max_tracked_addresses",
                reason: format!(
                    "must be above max_connections ({}), so every connected address fits",
                    limits.max_connections
                ),
            });
        }
        let nonzero = [
            ("max_connections_per_ip", self.max_connections_per_ip),
            ("connect_burst_per_ip", self.connect_burst_per_ip),
            ("max_tracked_addresses", self.max_tracked_addresses),
            ("max_unauthenticated", self.max_unauthenticated),
            (
                "max_unauthenticated_per_ip",
                self.max_unauthenticated_per_ip,
            ),
            ("login_failures_per_user", self.login_failures_per_user),
            ("login_failures_per_ip", self.login_failures_per_ip),
        ];
        for (key, value) in nonzero {
            if value == 0 {
                return Err(ConfigError::Invalid {
                    key,
                    reason: "must be at least 1 (exempt addresses with --admission-exempt \
                             instead of switching a limit off)"
                        .to_owned(),
                });
            }
        }
        if self.login_backoff.is_zero() || self.login_backoff > self.login_backoff_max {
            return Err(ConfigError::Invalid {
                key: "login_backoff",
                reason: "must be above 0 and at most login_backoff_max".to_owned(),
            });
        }
        if !(self.connect_rate_per_ip.is_finite() && self.connect_rate_per_ip > 0.0) {
            return Err(ConfigError::Invalid {
                key: "connect_rate_per_ip",
                reason: "must be a number above 0".to_owned(),
            });
        }
        Ok(())
    }
}
