//! Admission: whether a new connection may start a session, decided once per connection by
//! [`Admission::admit`] from the accept path of every listener (STOMP over TCP, the WebSocket
//! upgrade, and any other listener: each calls the same function with the client's address).
//!
//! A connection is admitted when, in this order:
//! 1. its address holds fewer than `max_connections_per_ip` connections, and fewer than
//!    `max_unauthenticated_per_ip` that have not completed CONNECT, and
//! 2. its address's token bucket (`connect_burst_per_ip`, refilled at `connect_rate_per_ip`
//!    per second) has a token,
//! 3. the node holds fewer than `max_connections`, and
//! 4. fewer than `max_unauthenticated` connections have not finished CONNECT yet.
//!
//! Addresses in `admission_exempt` (loopback by default) skip 1, 2 and 4. What was granted is
//! an [`AdmissionPermit`], held by the session and given back when it is dropped; the
//! unauthenticated part goes as soon as CONNECT succeeds. The per-address state is bounded
//! (`table`). The failed-login throttle is not here but in `auth::throttle`: it needs the
//! login, which only the CONNECT frame carries.

mod bucket;
mod client_key;
mod forwarded;
mod refusal;
mod table;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::http::HeaderMap;
use parking_lot::Mutex;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::{debug, warn};

pub use client_key::ClientKey;
pub use refusal::Refusal;

use crate::config::{AdmissionSettings, Cidr, Limits};
use bucket::Refill;
use table::{AddressTable, Denied};

/// Refused connections being told so at once. Telling takes up to a second per socket; past
/// this many, a refused socket is closed without a word, so a flood of refused connects
/// cannot hold descriptors through the refusals themselves.
const MAX_REFUSALS_IN_FLIGHT: usize = 256;

#[derive(Debug)]
pub struct Admission {
    /// `max_connections`, over all listeners.
    connections: Arc<Semaphore>,
    /// `max_unauthenticated`.
    unauthenticated: Arc<Semaphore>,
    addresses: Mutex<AddressTable>,
    max_per_address: usize,
    max_unauthenticated_per_address: usize,
    exempt: Vec<Cidr>,
    trusted_proxies: Vec<Cidr>,
    refusals: Arc<Semaphore>,
    /// Unix second of the last refusal logged at `warn`: a flood logs one line a second.
    last_warned: AtomicU64,
}

impl Admission {
    pub fn new(limits: &Limits, settings: &AdmissionSettings) -> Arc<Self> {
        let refill = Refill {
            rate: settings.connect_rate_per_ip,
            burst: settings.connect_burst_per_ip as f64,
        };
        Arc::new(Self {
            connections: Arc::new(Semaphore::new(limits.max_connections)),
            unauthenticated: Arc::new(Semaphore::new(settings.max_unauthenticated)),
            addresses: Mutex::new(AddressTable::new(
                settings.max_connections_per_ip,
                settings.max_unauthenticated_per_ip,
                refill,
                settings.max_tracked_addresses,
            )),
            max_per_address: settings.max_connections_per_ip,
            max_unauthenticated_per_address: settings.max_unauthenticated_per_ip,
            exempt: settings.admission_exempt.clone(),
            trusted_proxies: settings.trusted_proxy.clone(),
            refusals: Arc::new(Semaphore::new(MAX_REFUSALS_IN_FLIGHT)),
            last_warned: AtomicU64::new(0),
        })
    }

    /// Admits a connection from `ip` (the client's address: the TCP peer, or for a WebSocket
    /// upgrade [`Admission::client_address`]), or says why not.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<AdmissionPermit, Refusal> {
        let admitted = self.try_admit(ip);
        if let Err(refusal) = &admitted {
            self.log_refusal(ip, refusal);
        }
        admitted
    }

    fn try_admit(self: &Arc<Self>, ip: IpAddr) -> Result<AdmissionPermit, Refusal> {
        let exempt = self.is_exempt(ip);
        let address = if exempt {
            None
        } else {
            let key = ClientKey::from(ip);
            self.addresses
                .lock()
                .admit(key, Instant::now())
                .map_err(|denied| match denied {
                    Denied::Concurrent => Refusal::TooManyFromAddress(self.max_per_address),
                    Denied::Unauthenticated => {
                        Refusal::UnauthenticatedFromAddress(self.max_unauthenticated_per_address)
                    }
                    Denied::Rate(wait) => Refusal::RateExceeded(wait),
                    Denied::Full => Refusal::Busy,
                })?;
            // From here on, a refusal drops the slot, which gives the count back.
            Some(AddressSlot {
                admission: Arc::clone(self),
                key,
                unauthenticated: true,
                counted: true,
            })
        };
        let connection = Arc::clone(&self.connections)
            .try_acquire_owned()
            .map_err(|_| Refusal::TooManyConnections)?;
        let unauthenticated = if exempt {
            None
        } else {
            let slot = Arc::clone(&self.unauthenticated)
                .try_acquire_owned()
                .map_err(|_| Refusal::Busy)?;
            Some(slot)
        };
        Ok(AdmissionPermit {
            ip,
            admission: Arc::clone(self),
            address,
            connection,
            _unauthenticated: unauthenticated,
        })
    }

    /// The client of an HTTP request from `peer`: named by `X-Forwarded-For` / `X-Real-IP`
    /// when `peer` is a trusted proxy, else `peer` itself.
    pub fn client_address(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        forwarded::client_address(&self.trusted_proxies, peer, headers)
    }

    /// Whether `ip` is a proxy that names its clients (`trusted_proxy`).
    pub fn is_trusted_proxy(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|net| net.contains(ip))
    }

    /// Whether per-address limits skip `ip`.
    pub fn is_exempt(&self, ip: IpAddr) -> bool {
        self.exempt.iter().any(|net| net.contains(ip))
    }

    /// Room to tell a refused connection why; `None`: too many refusals are being written,
    /// close the socket without a word.
    pub fn refusal_slot(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.refusals).try_acquire_owned().ok()
    }

    fn log_refusal(&self, ip: IpAddr, refusal: &Refusal) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if self.last_warned.swap(now, Ordering::Relaxed) != now {
            warn!(%ip, reason = refusal.message(), "connection refused (logged once a second)");
        } else {
            debug!(%ip, reason = refusal.message(), "connection refused");
        }
    }
}

/// One admitted connection's share of the limits; dropping it gives everything back.
#[derive(Debug)]
pub struct AdmissionPermit {
    ip: IpAddr,
    admission: Arc<Admission>,
    address: Option<AddressSlot>,
    connection: OwnedSemaphorePermit,
    /// Given back at CONNECTED ([`AdmissionPermit::authenticated`] drops it).
    _unauthenticated: Option<OwnedSemaphorePermit>,
}

impl AdmissionPermit {
    /// The address the connection was admitted as (the failed-login throttle counts by it).
    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    /// The address when per-address limits apply to it, `None` when it is exempt.
    pub fn limited_address(&self) -> Option<IpAddr> {
        self.address.is_some().then_some(self.ip)
    }

    /// CONNECT is over: the connection no longer counts as unauthenticated, and what it keeps
    /// of its permit for the rest of its life is only what it must give back.
    pub fn authenticated(self) -> ConnectedPermit {
        let AdmissionPermit {
            admission,
            address,
            connection,
            ..
        } = self;
        // Both counts now belong to the connected permit, which gives them back.
        connection.forget();
        ConnectedPermit {
            address: address.map(AddressSlot::connected),
            admission,
        }
    }
}

/// A connected session's share of the limits, held to its end; dropping it gives it back.
/// Not the whole [`AdmissionPermit`]: the unauthenticated slot is spent at CONNECTED, and every
/// session, idle or not, holds this for its life: 24 B, the admission and the address it
/// counts against, where the address slot and the semaphore's own permit were 48
/// (docs/benchmarks.md, "Seventh cuts").
#[derive(Debug)]
pub struct ConnectedPermit {
    admission: Arc<Admission>,
    /// The address counted, `None` when it is exempt.
    address: Option<ClientKey>,
}

impl Drop for ConnectedPermit {
    fn drop(&mut self) {
        if let Some(key) = self.address {
            self.admission
                .addresses
                .lock()
                .release(key, false, Instant::now());
        }
        self.admission.connections.add_permits(1);
    }
}

/// A connection counted against its address while it connects; gives the count back when
/// dropped, unless it was handed to a [`ConnectedPermit`].
#[derive(Debug)]
struct AddressSlot {
    admission: Arc<Admission>,
    key: ClientKey,
    /// Still counted as unauthenticated for its address.
    unauthenticated: bool,
    /// Still this slot's to give back.
    counted: bool,
}

impl AddressSlot {
    /// CONNECT succeeded: no longer unauthenticated, and the count goes to the caller.
    fn connected(mut self) -> ClientKey {
        if std::mem::take(&mut self.unauthenticated) {
            self.admission.addresses.lock().authenticated(self.key);
        }
        self.counted = false;
        self.key
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        if self.counted {
            self.admission
                .addresses
                .lock()
                .release(self.key, self.unauthenticated, Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(edit: impl FnOnce(&mut Limits, &mut AdmissionSettings)) -> Arc<Admission> {
        let mut limits = Limits::default();
        let mut settings = AdmissionSettings::default();
        edit(&mut limits, &mut settings);
        Admission::new(&limits, &settings)
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    /// `max_connections` for the node, one per address, and no rate limit to speak of.
    fn one_per_address(max_connections: usize) -> Arc<Admission> {
        admission(|limits, settings| {
            limits.max_connections = max_connections;
            settings.max_connections_per_ip = 1;
            settings.connect_burst_per_ip = 10;
        })
    }

    /// Why a connection from `from` is refused (it must be).
    fn refusal(admission: &Arc<Admission>, from: &str) -> Refusal {
        admission.admit(ip(from)).expect_err(from)
    }

    #[test]
    fn exempt_addresses_skip_per_address_limits_but_not_the_node_limit() {
        let admission = admission(|limits, settings| {
            limits.max_connections = 3;
            settings.max_connections_per_ip = 1;
        });
        let a = admission.admit(ip("127.0.0.1")).expect("loopback");
        let b = admission.admit(ip("127.0.0.1")).expect("loopback again");
        let c = admission.admit(ip("192.0.2.1")).expect("remote");
        assert_eq!(
            admission.admit(ip("127.0.0.1")).expect_err("node full"),
            Refusal::TooManyConnections
        );
        drop((a, b, c));
    }

    #[test]
    fn unauthenticated_slot_is_released_by_authenticated() {
        let admission = admission(|_, settings| settings.max_unauthenticated = 1);
        let first = admission.admit(ip("192.0.2.1")).expect("first");
        assert_eq!(
            admission
                .admit(ip("192.0.2.2"))
                .expect_err("one unauthenticated at a time"),
            Refusal::Busy
        );
        // Still connected (the returned permit is held), no longer unauthenticated.
        let _connected = first.authenticated();
        let _second = admission.admit(ip("192.0.2.2")).expect("slot freed");
    }

    #[test]
    fn a_refusal_gives_the_address_count_back() {
        let admission = one_per_address(1);
        let held = admission.admit(ip("192.0.2.1")).expect("first");
        // Refused by the node limit after the address was counted: the count goes back.
        assert_eq!(
            refusal(&admission, "192.0.2.2"),
            Refusal::TooManyConnections
        );
        drop(held);
        let _again = admission
            .admit(ip("192.0.2.2"))
            .expect("count was given back");
    }

    #[test]
    fn a_connected_permit_holds_both_counts_and_gives_them_back() {
        let admission = one_per_address(2);
        let connected = |from: &str| admission.admit(ip(from)).expect(from).authenticated();
        let remote = connected("192.0.2.1");
        let local = connected("127.0.0.1");
        let refused = ["192.0.2.1", "192.0.2.2"].map(|from| refusal(&admission, from));
        let full = [Refusal::TooManyFromAddress(1), Refusal::TooManyConnections];
        assert_eq!(refused, full, "the address's count, then the node's");
        // Given back: the exempt connection's node count, then both of the other's.
        drop(local);
        let other = connected("192.0.2.2");
        drop((remote, other));
        let again = ["192.0.2.1", "192.0.2.3"].map(connected);
        drop(again);
    }
}
