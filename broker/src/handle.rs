//! The part of a session that others may touch: its identity, its outbox, the signals that
//! tell it to close or to recheck itself, and what operators may see of it (the admin API).
//! Everything else about a session is owned by its task alone.
//!
//! The signals wake the session through its outbox rather than through a token or a channel of
//! their own: an idle session then waits on one notification for everything other tasks may
//! want of it, instead of carrying a cancellation token (a heap node) and a reload receiver,
//! and a waiting future for each, through every idle hour (docs/benchmarks.md, idle section).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::auth::Principal;
use crate::error::StompError;
use crate::outbox::Outbox;
use crate::transport::TransportKind;

#[derive(Debug)]
pub struct SessionHandle {
    /// Process-unique id (router keys).
    pub id: u64,
    /// The `session` header of CONNECTED.
    pub name: SessionName,
    pub principal: Principal,
    /// Deliveries, and what other tasks asked of the session since it last looked
    /// ([`Signals`] bits, kept by the outbox).
    pub outbox: Outbox,
    /// What the admin API shows of the session.
    pub record: SessionRecord,
}

/// A session's name: random, shown as 16 hex digits (the `session` header of CONNECTED, the
/// admin API, the logs). Kept as the number: no string allocation per connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionName(pub u64);

impl std::fmt::Display for SessionName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl PartialEq<str> for SessionName {
    /// Whether `name` is this name as displayed (exactly: lower-case, 16 digits).
    fn eq(&self, name: &str) -> bool {
        let digits = name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        name.len() == 16 && digits && u64::from_str_radix(name, 16) == Ok(self.0)
    }
}

/// What other tasks ask of a session besides deliveries, taken at once by the session task
/// ([`SessionHandle::take_signals`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Signals(u8);

impl Signals {
    /// Close: graceful shutdown, or an operator's disconnect.
    const CLOSE: u8 = 1;
    /// Recheck credentials and subscriptions: a reload replaced the users file or ACL rules.
    const RECHECK: u8 = 2;

    pub fn close(self) -> bool {
        self.0 & Self::CLOSE != 0
    }

    pub fn recheck(self) -> bool {
        self.0 & Self::RECHECK != 0
    }
}

/// How a session looks to an operator: where it came from, since when, what it subscribes
/// to; and why an operator closed it, if one did.
#[derive(Debug)]
pub struct SessionRecord {
    /// `tcp`, `ws`, `tls`, `wss`, `sockjs`: one byte, not a 16-B `&str` (every session holds
    /// a record; the handle it is part of fits jemalloc's 224-B class rather than 256:
    /// docs/benchmarks.md, "Seventh cuts").
    transport: TransportKind,
    /// The client's address (for a WebSocket behind a trusted proxy, the one the proxy named).
    pub address: IpAddr,
    /// When CONNECTED went out, in Unix milliseconds.
    pub since_ms: u64,
    /// Kept by the session task as it subscribes and unsubscribes; read by the admin API only.
    state: Mutex<RecordState>,
}

#[derive(Debug, Default)]
struct RecordState {
    /// `(subscription id, destination)`, in subscription order. The destination is shared
    /// with the subscription where it can be (`/user` ones: `Router::common_name`).
    subscriptions: Vec<(Arc<str>, Arc<str>)>,
    /// Set by an operator's disconnect: the reason the ERROR frame carries. A `Box<str>`:
    /// 8 B less than a `String` in every session.
    disconnected: Option<Box<str>>,
}

impl SessionRecord {
    pub fn new(transport: TransportKind, address: IpAddr, since_ms: u64) -> Self {
        Self {
            transport,
            address,
            since_ms,
            state: Mutex::default(),
        }
    }

    /// `tcp`, `ws`, `tls`, `wss` or `sockjs`.
    pub fn transport(&self) -> &'static str {
        self.transport.as_str()
    }

    /// The session subscribed to `destination` as `id`.
    pub fn subscribed(&self, id: &Arc<str>, destination: Arc<str>) {
        let subscriptions = &mut self.state.lock().subscriptions;
        // Room for exactly the first one, as `Subscriptions` does: most sessions hold one.
        if subscriptions.capacity() == 0 {
            subscriptions.reserve_exact(1);
        }
        subscriptions.push((Arc::clone(id), destination));
    }

    /// It unsubscribed `id`.
    pub fn unsubscribed(&self, id: &str) {
        self.state.lock().subscriptions.retain(|(s, _)| &**s != id);
    }

    /// `(subscription id, destination)` of every subscription the session holds now.
    pub fn subscriptions(&self) -> Vec<(Arc<str>, String)> {
        let state = self.state.lock();
        let held = state.subscriptions.iter();
        held.map(|(id, destination)| (Arc::clone(id), destination.to_string()))
            .collect()
    }
}

impl Default for SessionRecord {
    /// A session nobody connected (the router's unit tests).
    fn default() -> Self {
        Self::new(TransportKind::Tcp, IpAddr::V4(Ipv4Addr::LOCALHOST), 0)
    }
}

impl SessionHandle {
    /// Closes the session with ERROR `disconnected` whose body is `reason` (an operator's).
    pub fn disconnect(&self, reason: String) {
        self.record.state.lock().disconnected = Some(reason.into());
        self.close();
    }

    /// Tells the session to close (ERROR `server shutting down`, unless an operator's
    /// disconnect said otherwise first).
    pub fn close(&self) {
        self.signal(Signals::CLOSE);
    }

    /// Tells the session to recheck its credentials and subscriptions (after a reload).
    pub fn recheck(&self) {
        self.signal(Signals::RECHECK);
    }

    /// What was asked since the last call. The bits are set before the outbox wakes the
    /// session, so a wake-up always finds them (a late wake-up finds nothing, harmlessly).
    pub fn take_signals(&self) -> Signals {
        Signals(self.outbox.take_signals())
    }

    fn signal(&self, bit: u8) {
        self.outbox.signal(bit);
    }

    /// Why the session was told to close: an operator's disconnect, or shutdown.
    pub fn closing_error(&self) -> StompError {
        match self.record.state.lock().disconnected.clone() {
            Some(reason) => StompError::Disconnected(reason.into()),
            None => StompError::ShuttingDown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SessionName;

    #[test]
    fn a_session_name_equals_exactly_its_sixteen_lower_case_hex_digits() {
        let name = SessionName(0x00ab_cdef_0123_4567);
        assert_eq!(name.to_string(), "00abcdef01234567");
        assert!(name == *"00abcdef01234567");
        assert!(name != *"00ABCDEF01234567", "upper case is another name");
        assert!(name != *"abcdef01234567", "without the leading zeros");
        assert!(name != *"+0abcdef01234567");
        assert!(SessionName(1) != *"00abcdef01234567");
    }
}
