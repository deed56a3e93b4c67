//! Push devices as the store keeps them: which user registered which device address, on which
//! platform, with the registration JSON as the client sent it (the broker's push crate parses
//! it; the store never looks inside).

use crate::conversation::UserId;

/// One registered device. The address (an FCM/APNs token or a Web Push endpoint) identifies it
/// across users: registering an address another user holds moves it (a phone that logs in as
/// someone else must stop buzzing for the first user).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushDevice {
    pub user_id: UserId,
    /// `fcm`, `apns`, `webpush`.
    pub platform: String,
    pub address: String,
    /// The registration body, JSON.
    pub registration: String,
    pub registered_at_ms: u64,
}

/// What [`ChatStore::register_device`](crate::ChatStore::register_device) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    /// A new device for the user (possibly taken over from another user).
    Added,
    /// The user had it already; its registration body was refreshed.
    Refreshed,
    /// The user already has `limit` other devices; nothing was stored.
    LimitReached,
}
