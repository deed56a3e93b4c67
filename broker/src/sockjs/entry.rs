//! What SockJS needs of the listener serving it: the broker, who may connect, and the tracker
//! sessions run in, and the one thing it does with them, start a STOMP session.

use std::sync::Arc;

use tokio_util::task::TaskTracker;

use crate::admission::{Admission, AdmissionPermit};
use crate::broker::Broker;
use crate::transport::Transport;

/// What SockJS needs of the listener serving it: the part of its `Gate` (which `sockjs` cannot
/// name without the two modules depending on each other) that starts sessions.
#[derive(Clone)]
pub struct Entry {
    pub broker: Arc<Broker>,
    pub admission: Arc<Admission>,
    pub tracker: TaskTracker,
}

impl Entry {
    /// A STOMP session over SockJS, tracked so shutdown waits for it.
    pub fn session(
        &self,
        transport: Transport,
        permit: AdmissionPermit,
    ) -> impl Future<Output = ()> + Send + use<> {
        let broker = Arc::clone(&self.broker);
        self.tracker
            .track_future(crate::session::serve(transport, broker, permit))
    }
}
