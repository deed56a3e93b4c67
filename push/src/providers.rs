//! The providers a node runs, built from its settings: at most one per platform, plus the
//! optional webhook that hears every notification.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::apns::ApnsSettings;
use crate::http::{self, Versions};
use crate::{
    ApnsProvider, Device, FcmProvider, Platform, Provider, PushError, WebPushProvider, Webhook,
};

/// Every push setting, as the broker's `--push-*` flags give them (the broker's config
/// section maps onto this; this crate reads the files they name).
#[derive(Debug, Clone, Default)]
pub struct ProviderSettings {
    /// `--push-fcm-credentials`: a Google service-account JSON.
    pub fcm_credentials: Option<PathBuf>,
    /// `--push-fcm-endpoint`: base URL instead of `https://fcm.googleapis.com`.
    pub fcm_endpoint: Option<String>,
    /// `--push-apns-key`: the .p8 signing key.
    pub apns_key: Option<PathBuf>,
    pub apns_key_id: Option<String>,
    pub apns_team_id: Option<String>,
    /// `--push-apns-topic`: the app's bundle id.
    pub apns_topic: Option<String>,
    /// `--push-apns-endpoint`: base URL instead of `https://api.push.apple.com`.
    pub apns_endpoint: Option<String>,
    /// `--push-vapid-key`: the VAPID P-256 private key (PEM).
    pub vapid_key: Option<PathBuf>,
    /// `--push-vapid-subject`: `mailto:` or `https:` contact for the push service.
    pub vapid_subject: Option<String>,
    /// `--push-webpush-allow`: hosts a Web Push endpoint may name (the broker POSTs there).
    pub webpush_allowed_hosts: Vec<String>,
    /// `--push-webhook-url` and `--push-webhook-secret` (HMAC-SHA256 key).
    pub webhook_url: Option<String>,
    pub webhook_secret: Option<String>,
    /// `--push-ca-file`: extra trusted roots for provider endpoints (local test servers).
    pub ca_file: Option<PathBuf>,
}

/// The node's providers by platform.
#[derive(Debug, Default, Clone)]
pub struct Providers {
    by_platform: HashMap<Platform, Arc<dyn Provider>>,
    /// `--push-webhook-url`: hears every notification once, with the user's devices.
    pub webhook: Option<Arc<Webhook>>,
}

impl Providers {
    /// Builds every provider the settings configure; an unusable setting fails startup.
    pub fn from_settings(settings: &ProviderSettings) -> Result<Self, PushError> {
        let mut providers = Providers::default();
        let ca_file = settings.ca_file.as_deref();
        if let Some(credentials) = &settings.fcm_credentials {
            let client = http::client(ca_file, Versions::Any)?;
            let fcm = FcmProvider::new(credentials, settings.fcm_endpoint.as_deref(), client)?;
            providers = providers.with(Arc::new(fcm));
        }
        if let Some(key) = &settings.apns_key {
            fn required<'a>(value: &'a Option<String>, flag: &str) -> Result<&'a str, PushError> {
                value.as_deref().ok_or_else(|| {
                    PushError::Config(format!("--push-apns-key needs --push-apns-{flag}"))
                })
            }
            let apns = ApnsSettings {
                key,
                key_id: required(&settings.apns_key_id, "key-id")?,
                team_id: required(&settings.apns_team_id, "team-id")?,
                topic: required(&settings.apns_topic, "topic")?,
                endpoint: settings.apns_endpoint.as_deref(),
            };
            let client = http::client(ca_file, Versions::Http2Only)?;
            providers = providers.with(Arc::new(ApnsProvider::new(&apns, client)?));
        }
        if let Some(key) = &settings.vapid_key {
            let subject = settings.vapid_subject.as_deref().ok_or_else(|| {
                PushError::Config("--push-vapid-key needs --push-vapid-subject".into())
            })?;
            let client = http::client(ca_file, Versions::Any)?;
            let webpush =
                WebPushProvider::new(key, subject, &settings.webpush_allowed_hosts, client)?;
            providers = providers.with(Arc::new(webpush));
        }
        if let Some(url) = &settings.webhook_url {
            let secret = settings.webhook_secret.as_deref().unwrap_or_default();
            let client = http::client(ca_file, Versions::Any)?;
            providers.webhook = Some(Arc::new(Webhook::new(url, secret, client)?));
        }
        Ok(providers)
    }

    pub fn with(mut self, provider: Arc<dyn Provider>) -> Self {
        self.by_platform.insert(provider.platform(), provider);
        self
    }

    /// Whether a device may be registered here: its shape, a configured platform, and the
    /// provider's own checks.
    pub fn accepts(&self, device: &Device) -> Result<(), PushError> {
        device.check()?;
        if self.provider(device.platform()).is_none() && self.webhook.is_some() {
            // The integrator's own stack delivers it; the webhook carries the devices.
            return Ok(());
        }
        self.provider(device.platform())
            .ok_or_else(|| {
                PushError::InvalidDevice(format!(
                    "push platform {} is not configured on this broker",
                    device.platform()
                ))
            })?
            .accepts(device)
    }

    pub fn provider(&self, platform: Platform) -> Option<&Arc<dyn Provider>> {
        self.by_platform.get(&platform)
    }

    /// No device provider and no webhook: nothing would ever be sent.
    pub fn is_empty(&self) -> bool {
        self.by_platform.is_empty() && self.webhook.is_none()
    }
}
