//! Push notifications for users with no online session: the devices a user registers, the
//! notification the broker decides to send, and the providers that carry it (FCM HTTP v1,
//! APNs, Web Push, a signed webhook).
//!
//! The broker decides *when* to push (coalescing, cancellation, the cluster-wide claim); this
//! crate only knows *how*: each provider speaks its service's protocol and classifies the
//! answer into a [`PushError`] the broker's dispatcher acts on (retry later, delete a dead
//! device, give up). Keeping the protocols out of the broker keeps its dependency tree (JWT,
//! HTTP/2, payload encryption) in one place and lets each provider be tested against a local
//! server on its own.

mod apns;
mod collapse;
mod device;
mod ece;
mod error;
mod fcm;
mod google_auth;
mod http;
mod notification;
mod provider;
mod providers;
mod vapid;
pub mod webhook;
mod webpush;

pub use apns::{ApnsProvider, ApnsSettings};
pub use device::{Device, Platform, WebPushKeys, WebPushSubscription};
pub use error::PushError;
pub use fcm::FcmProvider;
pub use notification::Notification;
pub use provider::Provider;
pub use providers::{ProviderSettings, Providers};
pub use webhook::Webhook;
pub use webpush::WebPushProvider;
