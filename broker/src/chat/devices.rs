//! What push device registration (`chat/op/push.rs`) needs beyond the store, wired by
//! `broker.rs`: which devices this node's providers can push to, and how many one user may
//! hold.

/// The node's push providers as registration sees them.
#[derive(Debug, Clone, Default)]
pub struct Devices {
    pub providers: stompbox_push::Providers,
    pub limit: usize,
}
