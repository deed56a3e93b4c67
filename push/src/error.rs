//! How a push failed, classified by what the dispatcher must do next.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The provider says the device will never receive again (FCM 404 `UNREGISTERED`, APNs
    /// 410, Web Push 404/410): the broker deletes the registration.
    #[error("device is gone: {0}")]
    DeadDevice(String),
    /// Worth trying again later (5xx, 429, a network error); `after` is the provider's
    /// `Retry-After` when it sent one.
    #[error("temporary push failure: {reason}")]
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    /// This notification will never be accepted as it is (4xx other than the above).
    #[error("push rejected: {0}")]
    Rejected(String),
    /// A registration the broker refuses (bad shape, platform not configured, endpoint not
    /// allowed).
    #[error("invalid device: {0}")]
    InvalidDevice(String),
    /// Settings that cannot work (an unreadable key, a malformed service account).
    #[error("push configuration: {0}")]
    Config(String),
}
