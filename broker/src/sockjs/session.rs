//! SockJS sessions: the registry of open ones by id, which receiver (poll or stream) holds each,
//! and the sweep that closes a session nobody has polled for the disconnect delay.
//!
//! A SockJS session owns the client's side of a [`Link`] to its STOMP session (which runs in
//! `session::serve` like any other) and the sender of the client's messages. Removing it from
//! the registry abandons the link: the STOMP session's writes fail and its reads end.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use dashmap::DashMap;
use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::entry::Entry;
use crate::admission::AdmissionPermit;
use crate::transport::Transport;
use crate::transport::sockjs::{INBOUND_MESSAGES, Link, SockJsTransport};
use crate::transport::tls::TlsPeer;

/// Most bytes a session queues for its receivers before the STOMP session's writes wait: a
/// streaming response's worth and then some, so a 100 KiB message fits whole.
pub(super) const MAX_PENDING: usize = 1024 * 1024;

/// How often the sweep looks for sessions without a receiver: a fraction of the disconnect
/// delay, so a session closes within 20% of it.
const SWEEPS_PER_DELAY: u32 = 5;

pub struct SockJsSession {
    pub link: Arc<Link>,
    pub inbound_tx: mpsc::Sender<Bytes>,
    receiver: Mutex<Receiver>,
}

/// Whether a receiver is attached, and since when none is.
struct Receiver {
    attached: bool,
    detached_since: Instant,
}

/// Held by the request currently receiving for a session; dropping it (the response ended,
/// or the client hung up) starts the disconnect delay.
pub struct Attached(Arc<SockJsSession>);

impl Attached {
    pub fn session(&self) -> &SockJsSession {
        &self.0
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        let mut receiver = self.0.receiver.lock();
        receiver.attached = false;
        receiver.detached_since = Instant::now();
    }
}

impl SockJsSession {
    /// Makes the caller the session's receiver, unless another one is.
    pub fn attach(self: &Arc<Self>) -> Option<Attached> {
        let mut receiver = self.receiver.lock();
        if receiver.attached {
            return None;
        }
        receiver.attached = true;
        Some(Attached(Arc::clone(self)))
    }

    fn idle_past(&self, deadline: Instant) -> bool {
        let receiver = self.receiver.lock();
        !receiver.attached && receiver.detached_since <= deadline
    }
}

/// The open SockJS sessions of one HTTP listener, by session id.
pub struct Registry {
    sessions: DashMap<String, Arc<SockJsSession>>,
}

impl Registry {
    /// A registry whose sweep runs until shutdown.
    pub fn start(gate: &Entry) -> Arc<Self> {
        let registry = Arc::new(Self {
            sessions: DashMap::new(),
        });
        let delay = gate.broker.config.sockjs.disconnect_delay;
        let sweep = Arc::downgrade(&registry);
        crate::chore::spawn_every(
            &gate.tracker,
            gate.broker.stopping.clone(),
            (delay / SWEEPS_PER_DELAY).max(Duration::from_millis(10)),
            move |now| {
                if let Some(registry) = sweep.upgrade() {
                    registry.sweep(now.checked_sub(delay).unwrap_or(now));
                }
            },
        );
        registry
    }

    pub fn get(&self, id: &str) -> Option<Arc<SockJsSession>> {
        self.sessions.get(id).map(|s| Arc::clone(&s))
    }

    /// Opens a session and starts its STOMP session, which holds `permit`. The caller is its
    /// first receiver.
    /// `tls` is the HTTPS layer's word on the client, for a client certificate's user.
    pub fn open(
        &self,
        gate: &Entry,
        id: &str,
        permit: AdmissionPermit,
        tls: Option<TlsPeer>,
    ) -> Attached {
        let link = Link::new(MAX_PENDING);
        let (inbound_tx, inbound_rx) = mpsc::channel(INBOUND_MESSAGES);
        let session = Arc::new(SockJsSession {
            link: Arc::clone(&link),
            inbound_tx,
            receiver: Mutex::new(Receiver {
                attached: true,
                detached_since: Instant::now(),
            }),
        });
        let attached = Attached(Arc::clone(&session));
        if let Some(old) = self.sessions.insert(id.to_owned(), session) {
            // The same id opened twice at once: the newer wins, the older is gone.
            old.link.abandon();
        }
        let transport = Transport::SockJs(SockJsTransport::new(link, inbound_rx, tls));
        tokio::spawn(gate.session(transport, permit));
        attached
    }

    /// Closes every session without a receiver since `deadline`.
    fn sweep(&self, deadline: Instant) {
        self.sessions.retain(|_, session| {
            let keep = !session.idle_past(deadline);
            if !keep {
                session.link.abandon();
            }
            keep
        });
    }
}
