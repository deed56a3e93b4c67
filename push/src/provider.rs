//! The seam between the broker's dispatcher and one push service.

use crate::{Device, Notification, Platform, PushError};

/// One push service's protocol. The dispatcher owns queues, retries and backoff; a provider
/// makes one attempt per call and classifies its outcome.
#[async_trait::async_trait]
pub trait Provider: Send + Sync + std::fmt::Debug + 'static {
    /// The platform whose devices it serves.
    fn platform(&self) -> Platform;

    /// Checks at registration beyond [`Device::check`] (e.g. a Web Push endpoint on an
    /// allowed host: the broker will POST there, so a client must not pick any URL).
    fn accepts(&self, device: &Device) -> Result<(), PushError> {
        let _ = device;
        Ok(())
    }

    /// One delivery attempt of `notification` to `device`.
    async fn send(&self, device: &Device, notification: &Notification) -> Result<(), PushError>;
}
