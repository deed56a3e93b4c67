//! Failed-login throttling: after enough failed CONNECTs for one user name, or from one
//! address, further attempts are refused at once, without a password check, for a backoff that
//! starts at `login_backoff` and doubles with each further failure up to `login_backoff_max`.
//!
//! The two counters differ on purpose, so that an attacker cannot lock a victim out:
//! - **per address** it blocks: an address over `login_failures_per_ip` is refused whatever
//!   user it names. Exempt addresses (loopback) are not counted: they may be a proxy carrying
//!   everyone.
//! - **per user** it only delays guessing: a user over `login_failures_per_user` is refused
//!   only from addresses that have failed logins themselves. Whoever guesses from one address
//!   is stopped after a few tries, and a botnet gets one guess per fresh address, while the
//!   user, from an address with no failures, still gets in.
//!
//! A success clears the user's counter but not the address's: otherwise an attacker with one
//! valid account could wipe its address's record between guesses at others.
//!
//! Checked twice per CONNECT, on arrival and again when its credential check may start, so
//! failures recorded while it queued count; at most `max_auth_checks` guesses run past the
//! limit. Memory is bounded: user names are kept as 64-bit keyed hashes (a name can be 16 KiB
//! long), and each table holds at most `max_entries`; expired records are swept when it is
//! full, and while every record is still live, new names or addresses go uncounted (a
//! warning says so) rather than growing without bound.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use thiserror::Error;
use tracing::warn;

use crate::admission::ClientKey;
use crate::config::AdmissionSettings;

/// Records kept per table. With ~40 bytes a record, the two tables stay under 6 MiB.
const MAX_ENTRIES: usize = 65_536;

/// A CONNECT refused without a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum Throttled {
    #[error("too many failed logins for this user from this address; retry in {} s", secs(.0))]
    User(Duration),
    #[error("too many failed logins from this address; retry in {} s", secs(.0))]
    Address(Duration),
}

fn secs(wait: &Duration) -> u64 {
    wait.as_secs_f64().ceil() as u64
}

/// When and how hard to throttle.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub per_user: usize,
    pub per_address: usize,
    pub window: Duration,
    /// The first refusal after the limit; each further failure doubles it.
    pub backoff: Duration,
    pub backoff_max: Duration,
}

impl From<&AdmissionSettings> for Policy {
    fn from(settings: &AdmissionSettings) -> Self {
        Self {
            per_user: settings.login_failures_per_user,
            per_address: settings.login_failures_per_ip,
            window: settings.login_failure_window,
            backoff: settings.login_backoff,
            backoff_max: settings.login_backoff_max,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: usize,
    last: Instant,
}

impl Record {
    /// How long an address or user over `limit` is refused after its last failure.
    fn backoff(&self, limit: usize, policy: &Policy) -> Option<Duration> {
        let over = self.failures.checked_sub(limit)?;
        let doubling = 1u32 << over.min(20);
        Some(
            policy
                .backoff
                .saturating_mul(doubling)
                .min(policy.backoff_max),
        )
    }

    fn blocked_for(&self, limit: usize, policy: &Policy, now: Instant) -> Option<Duration> {
        let until = self.last + self.backoff(limit, policy)?;
        until.checked_duration_since(now).filter(|d| !d.is_zero())
    }

    fn expired(&self, limit: usize, policy: &Policy, now: Instant) -> bool {
        let keep = policy
            .window
            .max(self.backoff(limit, policy).unwrap_or_default());
        now.saturating_duration_since(self.last) >= keep
    }
}

/// One counter table (users or addresses).
#[derive(Debug)]
struct Failures<K> {
    records: HashMap<K, Record>,
    limit: usize,
    max_entries: usize,
}

impl<K: Hash + Eq + Copy> Failures<K> {
    fn new(limit: usize, max_entries: usize) -> Self {
        Self {
            records: HashMap::new(),
            limit,
            max_entries,
        }
    }

    fn live(&self, key: &K, policy: &Policy, now: Instant) -> Option<&Record> {
        self.records
            .get(key)
            .filter(|r| !r.expired(self.limit, policy, now))
    }

    fn blocked_for(&self, key: &K, policy: &Policy, now: Instant) -> Option<Duration> {
        self.live(key, policy, now)?
            .blocked_for(self.limit, policy, now)
    }

    fn has_failed(&self, key: &K, policy: &Policy, now: Instant) -> bool {
        self.live(key, policy, now).is_some()
    }

    fn fail(&mut self, key: K, policy: &Policy, now: Instant) {
        if !self.records.contains_key(&key) && self.records.len() >= self.max_entries {
            let limit = self.limit;
            self.records.retain(|_, r| !r.expired(limit, policy, now));
            if self.records.len() >= self.max_entries {
                warn!(
                    tracked = self.records.len(),
                    "failed-login table full: this failure goes uncounted"
                );
                return;
            }
        }
        let limit = self.limit;
        let record = self.records.entry(key).or_insert(Record {
            failures: 0,
            last: now,
        });
        if record.expired(limit, policy, now) {
            record.failures = 0;
        }
        record.failures += 1;
        record.last = now;
    }

    fn clear(&mut self, key: &K) {
        self.records.remove(key);
    }
}

#[derive(Debug)]
pub struct LoginThrottle {
    policy: Policy,
    /// Keyed by a keyed hash of the login: bounded size whatever the name's length, and not
    /// predictable, so names cannot be chosen to collide with a victim's.
    users: Mutex<Failures<u64>>,
    addresses: Mutex<Failures<ClientKey>>,
    hasher: RandomState,
}

/// Who is attempting: the CONNECT's `login` (if any) and the address it came from, `None` for
/// an exempt address.
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    pub login: Option<&'a str>,
    pub address: Option<IpAddr>,
}

impl LoginThrottle {
    pub fn new(policy: Policy) -> Self {
        Self::with_capacity(policy, MAX_ENTRIES)
    }

    fn with_capacity(policy: Policy, max_entries: usize) -> Self {
        Self {
            policy,
            users: Mutex::new(Failures::new(policy.per_user, max_entries)),
            addresses: Mutex::new(Failures::new(policy.per_address, max_entries)),
            hasher: RandomState::new(),
        }
    }

    fn user_key(&self, login: Option<&str>) -> Option<u64> {
        login.map(|name| self.hasher.hash_one(name))
    }

    /// Whether `attempt` may have its credentials checked now.
    pub fn check(&self, attempt: Attempt<'_>, now: Instant) -> Result<(), Throttled> {
        let policy = &self.policy;
        let address = attempt.address.map(ClientKey::from);
        let address_failed = match address {
            Some(key) => {
                let addresses = self.addresses.lock();
                if let Some(wait) = addresses.blocked_for(&key, policy, now) {
                    return Err(Throttled::Address(wait));
                }
                addresses.has_failed(&key, policy, now)
            }
            // An exempt address may carry anyone, the guesser included: never "clean".
            None => true,
        };
        if address_failed
            && let Some(user) = self.user_key(attempt.login)
            && let Some(wait) = self.users.lock().blocked_for(&user, policy, now)
        {
            return Err(Throttled::User(wait));
        }
        Ok(())
    }

    /// The credentials of `attempt` were wrong.
    pub fn failed(&self, attempt: Attempt<'_>, now: Instant) {
        if let Some(user) = self.user_key(attempt.login) {
            self.users.lock().fail(user, &self.policy, now);
        }
        if let Some(ip) = attempt.address {
            self.addresses
                .lock()
                .fail(ClientKey::from(ip), &self.policy, now);
        }
    }

    /// `login` authenticated: its failures are forgotten (its address's are not).
    pub fn succeeded(&self, login: Option<&str>) {
        if let Some(user) = self.user_key(login) {
            self.users.lock().clear(&user);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: Policy = Policy {
        per_user: 3,
        per_address: 5,
        window: Duration::from_secs(60),
        backoff: Duration::from_secs(1),
        backoff_max: Duration::from_secs(8),
    };

    fn from<'a>(login: &'a str, ip: &str) -> Attempt<'a> {
        Attempt {
            login: Some(login),
            address: Some(ip.parse().expect("address")),
        }
    }

    #[test]
    fn user_is_throttled_from_failing_addresses_with_growing_backoff() {
        let throttle = LoginThrottle::new(POLICY);
        let now = Instant::now();
        let attacker = from("alice", "192.0.2.1");
        for _ in 0..3 {
            throttle.check(attacker, now).expect("under the limit");
            throttle.failed(attacker, now);
        }
        assert_eq!(
            throttle.check(attacker, now),
            Err(Throttled::User(Duration::from_secs(1)))
        );
        // Another address that has failed (at anything) is refused for alice too.
        let other = from("bob", "192.0.2.2");
        throttle.failed(other, now);
        assert!(matches!(
            throttle.check(from("alice", "192.0.2.2"), now),
            Err(Throttled::User(_))
        ));
        // The victim's own, clean address still gets its check.
        throttle
            .check(from("alice", "198.51.100.7"), now)
            .expect("a clean address is not locked out");
        // After the backoff, one more failure doubles it.
        let later = now + Duration::from_secs(1);
        throttle.check(attacker, later).expect("backoff over");
        throttle.failed(attacker, later);
        assert_eq!(
            throttle.check(attacker, later),
            Err(Throttled::User(Duration::from_secs(2)))
        );
    }

    #[test]
    fn address_is_blocked_for_every_user_and_success_does_not_clear_it() {
        let throttle = LoginThrottle::new(POLICY);
        let now = Instant::now();
        for n in 0..5 {
            let name = format!("user{n}");
            throttle.failed(from(&name, "192.0.2.1"), now);
        }
        assert!(matches!(
            throttle.check(from("anyone", "192.0.2.1"), now),
            Err(Throttled::Address(_))
        ));
        throttle.succeeded(Some("mallory"));
        assert!(throttle.check(from("mallory", "192.0.2.1"), now).is_err());
        throttle
            .check(from("anyone", "192.0.2.9"), now)
            .expect("other addresses unaffected");
    }

    #[test]
    fn success_clears_the_user_and_the_window_forgets() {
        let throttle = LoginThrottle::new(POLICY);
        let now = Instant::now();
        let attempt = from("alice", "192.0.2.1");
        for _ in 0..3 {
            throttle.failed(attempt, now);
        }
        throttle.succeeded(Some("alice"));
        throttle
            .check(attempt, now)
            .expect("cleared by the success");
        for _ in 0..3 {
            throttle.failed(attempt, now);
        }
        let after_window = now + POLICY.window;
        throttle.check(attempt, after_window).expect("forgotten");
        throttle.failed(attempt, after_window);
        throttle
            .check(attempt, after_window)
            .expect("counting starts again from one");
    }

    #[test]
    fn exempt_addresses_are_never_blocked_but_users_are_throttled_through_them() {
        let throttle = LoginThrottle::new(POLICY);
        let now = Instant::now();
        let proxied = Attempt {
            login: Some("alice"),
            address: None,
        };
        for _ in 0..10 {
            throttle.failed(
                Attempt {
                    login: None,
                    ..proxied
                },
                now,
            );
        }
        throttle
            .check(
                Attempt {
                    login: None,
                    ..proxied
                },
                now,
            )
            .expect("not blocked");
        for _ in 0..3 {
            throttle.failed(proxied, now);
        }
        assert!(matches!(
            throttle.check(proxied, now),
            Err(Throttled::User(_))
        ));
    }

    #[test]
    fn tables_are_bounded() {
        let throttle = LoginThrottle::with_capacity(POLICY, 10);
        let now = Instant::now();
        for n in 0..1000u32 {
            let name = format!("name{n}");
            let ip = std::net::Ipv4Addr::from(0x0a00_0000 + n).to_string();
            throttle.failed(from(&name, &ip), now);
        }
        assert!(throttle.users.lock().records.len() <= 10);
        assert!(throttle.addresses.lock().records.len() <= 10);
        // Expired records make room again.
        throttle.failed(from("late", "192.0.2.1"), now + POLICY.window);
        assert!(throttle.users.lock().records.len() <= 10);
        assert!(
            throttle
                .check(from("late", "192.0.2.1"), now + POLICY.window)
                .is_ok()
        );
    }
}
