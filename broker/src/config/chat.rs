//! The built-in chat application's settings (`/app/...` and the HTTP API at `/api`).

use std::time::Duration;

use super::setting::settings;

settings! {
    /// The built-in chat application (`/app/...`).
    pub struct ChatConfig, layer ChatLayer, heading Some("Chat application");

    /// Largest message `content`, in bytes. 16 KiB holds any human-typed message; files go
    /// elsewhere and are linked.
    max_content as "chat_max_content": usize = 16 * 1024,
        "BYTES", "Largest chat message content in bytes";
    /// A session's presence lapses this long after its last sign of life. The design's 30 s is
    /// two missed 15 s client heart-beats.
    presence_ttl: Duration = Duration::from_secs(30),
        "DURATION", "A session's presence lapses this long after its last sign of life";
    /// Sustained chat requests per second per user (0 disables the limit); a human types a
    /// few per second at most, a runaway client far more.
    rate_per_sec as "chat_rate": f64 = 20.0,
        "PER_SEC", "Sustained chat requests per second per user; 0 disables the limit";
    /// Requests a user may make at once before the rate applies (a reconnect syncs and
    /// resends a little burst).
    rate_burst as "chat_burst": f64 = 100.0,
        "N", "Chat requests a user may make in a burst";
    /// Bearer token of the backend services' HTTP API (`/api/...`); `None` disables the API.
    service_token: Option<String> = None,
        "TOKEN", "Bearer token for the backend services' HTTP API at /api; unset disables the API";
    /// Cluster mode: how long after joining a GROUP conversation a member's copies of its
    /// messages still go on the member's own channel rather than the room's, while the
    /// member's nodes subscribe to the room (milliseconds; the grace covers Redis stalls).
    room_join_grace: Duration = Duration::from_secs(10),
        "DURATION", "Cluster mode: for this long after joining a group a member's copies go on their own Redis channel, not the room's";
}
