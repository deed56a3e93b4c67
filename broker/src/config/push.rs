//! Push notifications for offline users (docs/push.md): the providers' credentials and
//! endpoints, the webhook, when to push (`push_coalesce`, `push_preview`) and the dispatch
//! queue's bounds. A provider is on when its credentials are given; the push crate reads the
//! files they name at startup ([`PushConfig::provider_settings`]).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::error::ConfigError;
use super::setting::settings;

/// Hosts a Web Push endpoint may name by default: the browsers' real push services. A
/// subscription names the URL the broker POSTs to, so a client must not choose any host (an
/// SSRF hole into the broker's network).
pub const WEBPUSH_SERVICES: &[&str] = &[
    "fcm.googleapis.com",
    "updates.push.services.mozilla.com",
    "web.push.apple.com",
    "*.notify.windows.com",
];

settings! {
    /// Push notifications to users with no online session.
    pub struct PushConfig, layer PushLayer, heading Some("Push notifications");

    /// A Google service-account JSON (`project_id`, `client_email`, `private_key`,
    /// `token_uri`): FCM HTTP v1 is on when given.
    push_fcm_credentials: Option<PathBuf> = None,
        "FILE", "FCM HTTP v1: Google service-account JSON (turns FCM on)";
    /// Base URL of FCM (tests point it at a local server).
    push_fcm_endpoint: Option<String> = None,
        "URL", "FCM base URL instead of https://fcm.googleapis.com";
    /// APNs token auth: the .p8 key, its key id, the team id and the app's bundle id.
    push_apns_key: Option<PathBuf> = None,
        "FILE", "APNs .p8 signing key (turns APNs on, with key id, team id and topic)";
    push_apns_key_id: Option<String> = None,
        "ID", "APNs key id of --push-apns-key";
    push_apns_team_id: Option<String> = None,
        "ID", "APNs team id";
    push_apns_topic: Option<String> = None,
        "BUNDLE_ID", "APNs topic: the app's bundle id";
    push_apns_endpoint: Option<String> = None,
        "URL", "APNs base URL instead of https://api.push.apple.com";
    /// VAPID (RFC 8292) P-256 private key, PEM: Web Push is on when given.
    push_vapid_key: Option<PathBuf> = None,
        "FILE", "Web Push VAPID P-256 private key, PEM (turns Web Push on)";
    push_vapid_subject: Option<String> = None,
        "URI", "Web Push VAPID subject: mailto: or https: contact";
    /// Hosts a Web Push subscription's endpoint may name (`*.` matches subdomains).
    push_webpush_allow as "push_webpush_allow" | "push_webpush_allows": Vec<String> =
        WEBPUSH_SERVICES.iter().map(|h| h.to_string()).collect(),
        "HOST", "Hosts a Web Push endpoint may name (*.example.com for subdomains)";
    /// Integrators' own push stack: every notification POSTed there, signed.
    push_webhook_url: Option<String> = None,
        "URL", "Webhook receiving every push notification as signed JSON (turns it on)";
    push_webhook_secret: Option<String> = None,
        "SECRET", "HMAC-SHA256 key of the webhook's Stompbox-Signature header";
    /// Extra trusted roots for provider endpoints (local test providers).
    push_ca_file: Option<PathBuf> = None,
        "FILE", "PEM CA certificates trusted for provider endpoints besides the public roots";
    /// One notification per user per window, naming the count ("3 new messages from priya").
    push_coalesce: Duration = Duration::from_secs(3),
        "DURATION", "Messages to an offline user within this window make one notification";
    /// `count`: sender/conversation and count only; `full`: the newest message's content too.
    push_preview: PushPreview = PushPreview::Count,
        "MODE", "What a notification shows: count (sender and count) or full (content too)";
    /// Notifications waiting for a provider; past either bound the oldest is shed (counted).
    push_queue: usize = 10_000,
        "N", "Push notifications waiting for dispatch before the oldest is shed";
    push_queue_bytes: usize = 16 * 1024 * 1024,
        "BYTES", "Bytes of push notifications waiting before the oldest is shed";
    /// Devices one user may register (phones, tablets, browsers).
    push_device_limit: usize = 10,
        "N", "Push devices one user may register";
}

impl PushConfig {
    /// Whether any provider is configured (otherwise nothing is pushed and registration is
    /// refused).
    pub fn enabled(&self) -> bool {
        self.push_fcm_credentials.is_some()
            || self.push_apns_key.is_some()
            || self.push_vapid_key.is_some()
            || self.push_webhook_url.is_some()
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &'static str, message: &str| ConfigError::Invalid {
            key,
            reason: message.to_string(),
        };
        if self.push_webhook_url.is_some() && self.push_webhook_secret.is_none() {
            return Err(invalid(
                "push_webhook_secret",
                "push_webhook_url needs a secret to sign with (receivers must be able to tell \
                 the broker's notifications from anyone's)",
            ));
        }
        if self.push_coalesce.is_zero() {
            return Err(invalid("push_coalesce", "must be more than 0"));
        }
        if self.push_queue == 0 || self.push_queue_bytes == 0 {
            return Err(invalid(
                "push_queue",
                "the dispatch queue bounds must be above 0",
            ));
        }
        if self.push_device_limit == 0 {
            return Err(invalid("push_device_limit", "must be at least 1"));
        }
        Ok(())
    }

    /// The providers' part, as the push crate takes it.
    pub fn provider_settings(&self) -> stompbox_push::ProviderSettings {
        stompbox_push::ProviderSettings {
            fcm_credentials: self.push_fcm_credentials.clone(),
            fcm_endpoint: self.push_fcm_endpoint.clone(),
            apns_key: self.push_apns_key.clone(),
            apns_key_id: self.push_apns_key_id.clone(),
            apns_team_id: self.push_apns_team_id.clone(),
            apns_topic: self.push_apns_topic.clone(),
            apns_endpoint: self.push_apns_endpoint.clone(),
            vapid_key: self.push_vapid_key.clone(),
            vapid_subject: self.push_vapid_subject.clone(),
            webpush_allowed_hosts: self.push_webpush_allow.clone(),
            webhook_url: self.push_webhook_url.clone(),
            webhook_secret: self.push_webhook_secret.clone(),
            ca_file: self.push_ca_file.clone(),
        }
    }
}

/// What a notification may show (`--push-preview`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PushPreview {
    /// "3 new messages from priya": sender or conversation, and the count.
    #[default]
    Count,
    /// The newest message's content as the body (it passes through the push services).
    Full,
}

impl fmt::Display for PushPreview {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Count => "count",
            Self::Full => "full",
        })
    }
}

impl super::setting::Value for PushPreview {
    fn parser() -> clap::builder::ValueParser {
        use clap::builder::{PossibleValuesParser, TypedValueParser};
        let parser = PossibleValuesParser::new(["count", "full"]).map(|s| match s.as_str() {
            "full" => PushPreview::Full,
            _ => PushPreview::Count,
        });
        clap::builder::ValueParser::new(parser)
    }

    fn deserialize<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        <Self as serde::Deserialize>::deserialize(deserializer)
    }

    fn shown(&self) -> Option<String> {
        Some(self.to_string())
    }
}
