//! The part of a session that others may touch: its identity, its outbox, the token that
//! tells it to close, and what operators may see of it (the admin API). Everything else about
//! a session is owned by its task alone.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use crate::auth::Principal;
use crate::error::StompError;
use crate::outbox::Outbox;

#[derive(Debug)]
pub struct SessionHandle {
    /// Process-unique id (router keys).
    pub id: u64,
    /// The `session` header of CONNECTED.
    pub name: String,
    pub principal: Principal,
    pub outbox: Outbox,
    /// Cancelled to close the session: graceful shutdown, or an operator's disconnect (which
    /// says why first: [`SessionHandle::disconnect`]).
    pub cancel: CancellationToken,
    /// What the admin API shows of the session.
    pub record: SessionRecord,
}

/// How a session looks to an operator: where it came from, since when, what it subscribes
/// to; and why an operator closed it, if one did.
#[derive(Debug)]
pub struct SessionRecord {
    /// `tcp`, `ws`, `tls`, `wss`.
    pub transport: &'static str,
    /// The client's address (for a WebSocket behind a trusted proxy, the one the proxy named).
    pub address: IpAddr,
    /// When CONNECTED went out, in Unix milliseconds.
    pub since_ms: u64,
    /// Kept by the session task as it subscribes and unsubscribes; read by the admin API only.
    state: Mutex<RecordState>,
}

#[derive(Debug, Default)]
struct RecordState {
    /// `(subscription id, destination)`, in subscription order.
    subscriptions: Vec<(Arc<str>, Box<str>)>,
    /// Set by an operator's disconnect: the reason the ERROR frame carries.
    disconnected: Option<String>,
}

impl SessionRecord {
    pub fn new(transport: &'static str, address: IpAddr, since_ms: u64) -> Self {
        Self {
            transport,
            address,
            since_ms,
            state: Mutex::default(),
        }
    }

    /// The session subscribed to `destination` as `id`.
    pub fn subscribed(&self, id: &Arc<str>, destination: String) {
        let subscriptions = &mut self.state.lock().subscriptions;
        // Room for exactly the first one, as `Subscriptions` does: most sessions hold one.
        if subscriptions.capacity() == 0 {
            subscriptions.reserve_exact(1);
        }
        subscriptions.push((Arc::clone(id), destination.into_boxed_str()));
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
        Self::new("test", IpAddr::V4(Ipv4Addr::LOCALHOST), 0)
    }
}

impl SessionHandle {
    /// Closes the session with ERROR `disconnected` whose body is `reason` (an operator's).
    pub fn disconnect(&self, reason: String) {
        self.record.state.lock().disconnected = Some(reason);
        self.cancel.cancel();
    }

    /// Why the session was told to close: an operator's disconnect, or shutdown.
    pub fn closing_error(&self) -> StompError {
        match self.record.state.lock().disconnected.clone() {
            Some(reason) => StompError::Disconnected(reason),
            None => StompError::ShuttingDown,
        }
    }
}
