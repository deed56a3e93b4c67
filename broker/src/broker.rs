//! The state every session shares: configuration, router, credentials, authorization, ids.

use std::sync::atomic::{AtomicU64, Ordering};

use tokio_util::sync::CancellationToken;

use crate::acl::Acl;
use crate::auth::{AuthError, Authenticator};
use crate::config::Config;
use crate::id::IdGenerator;
use crate::router::Router;

#[derive(Debug)]
pub struct Broker {
    pub config: Config,
    pub router: Router,
    pub auth: Authenticator,
    pub acl: Acl,
    pub ids: IdGenerator,
    /// Cancelled when shutdown begins: listeners stop and handshakes are refused.
    pub stopping: CancellationToken,
    next_session: AtomicU64,
}

impl Broker {
    pub fn new(config: Config) -> Result<Self, AuthError> {
        Ok(Self {
            router: Router::new(config.limits.queue_max_messages),
            auth: Authenticator::from_config(&config.auth)?,
            acl: Acl::new(&config.acl),
            ids: IdGenerator::new(config.node_id),
            stopping: CancellationToken::new(),
            next_session: AtomicU64::new(1),
            config,
        })
    }

    pub fn next_session_id(&self) -> u64 {
        self.next_session.fetch_add(1, Ordering::Relaxed)
    }
}
