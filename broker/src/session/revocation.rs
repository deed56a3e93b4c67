//! What ends a session's right to go on after it connected: its token's expiry, and a reload
//! (SIGHUP) that removed its user or changed its password, or whose ACL rules no longer allow
//! a subscription it holds. Each ends the session with an ERROR saying which.
//!
//! STOMP has no way to cancel one subscription from the server side (an ERROR always closes
//! the connection), so a subscription the new rules deny closes the session: the client
//! reconnects, and its SUBSCRIBE is then refused with `access denied` like any other.

use std::sync::Arc;

use super::state::Session;
use super::subscription::{Registration, Subscription};
use crate::config::AclAction;
use crate::error::StompError;
use crate::moment::Moment;

impl Session {
    /// Whether the session's token has expired by `now`.
    pub(super) fn token_expired(&self, now: Moment) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// After a reload: the session's credentials still stand, and every subscription it
    /// holds is still allowed.
    pub(super) fn recheck(&self) -> Result<(), StompError> {
        let principal = &self.handle.principal;
        if !self.broker.auth.still_valid(principal, &self.proof) {
            return Err(StompError::CredentialsRevoked);
        }
        let acl = self.broker.acl.load();
        if acl.is_open() {
            return Ok(());
        }
        let user = principal.name();
        for subscription in self.subscriptions.iter() {
            let Some(destination) = subscribed_to(subscription) else {
                continue;
            };
            if !acl.allows(user, AclAction::Subscribe, &destination) {
                return Err(StompError::AccessDenied(format!(
                    "the reloaded rules no longer allow user {user:?} to subscribe to \
                     {destination:?} (subscription {:?}); reconnect",
                    &*subscription.id
                )));
            }
        }
        Ok(())
    }
}

/// The destination a subscription was made with, as the ACL rules match it (and as the admin
/// API lists it).
/// A `/user` subscription's is the shared name it keeps (`Router::common_name`): the record
/// then costs no string of its own.
pub(super) fn subscribed_to(subscription: &Subscription) -> Option<Arc<str>> {
    Some(match &subscription.registration {
        Registration::Topic(name) => Arc::from(format!("/topic/{name}")),
        Registration::Queue(queue) => Arc::from(format!("/queue/{}", queue.name)),
        Registration::TempQueue(name) => Arc::from(format!("/temp-queue/{name}")),
        Registration::User(_) => Arc::clone(subscription.destination.as_ref()?),
    })
}
