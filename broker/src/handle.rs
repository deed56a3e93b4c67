//! The part of a session that others may touch: its identity, its outbox, and the token that
//! tells it to close. Everything else about a session is owned by its task alone.

use tokio_util::sync::CancellationToken;

use crate::auth::Principal;
use crate::outbox::Outbox;

#[derive(Debug)]
pub struct SessionHandle {
    /// Process-unique id (router keys).
    pub id: u64,
    /// The `session` header of CONNECTED.
    pub name: String,
    pub principal: Principal,
    pub outbox: Outbox,
    /// Cancelled to close the session (graceful shutdown).
    pub cancel: CancellationToken,
}
