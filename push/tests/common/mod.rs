//! Starting a push-testbed for a test and configuring providers against it.

#![allow(dead_code)] // each test file uses a different part

use std::sync::Arc;
use std::time::Duration;

use push_testbed::{Failure, Options, Script, Testbed};
use stompbox_push::{
    Device, Notification, Platform, Provider, ProviderSettings, Providers, PushError, WebPushKeys,
    WebPushSubscription,
};

pub struct Bed {
    pub testbed: Testbed,
    // Holds the key files until the test ends.
    _dir: tempfile::TempDir,
}

pub async fn start() -> Bed {
    start_with(|_| {}).await
}

pub async fn start_with(adjust: impl FnOnce(&mut Options)) -> Bed {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut options = Options::new(dir.path());
    adjust(&mut options);
    let testbed = Testbed::start(options).await.expect("testbed starts");
    Bed { testbed, _dir: dir }
}

impl Bed {
    /// Every provider configured against this testbed, as the broker's flags would.
    pub fn settings(&self) -> ProviderSettings {
        let info = self.testbed.info();
        ProviderSettings {
            fcm_credentials: Some(info.fcm.credentials.clone()),
            fcm_endpoint: Some(info.fcm.endpoint.clone()),
            apns_key: Some(info.apns.key.clone()),
            apns_key_id: Some(info.apns.key_id.clone()),
            apns_team_id: Some(info.apns.team_id.clone()),
            apns_topic: Some(info.apns.topic.clone()),
            apns_endpoint: Some(info.apns.endpoint.clone()),
            vapid_key: Some(info.webpush.vapid_key.clone()),
            vapid_subject: Some(info.webpush.vapid_subject.clone()),
            webpush_allowed_hosts: vec![info.webpush.allowed_host.clone()],
            ca_file: Some(info.ca_file.clone()),
            ..ProviderSettings::default()
        }
    }

    /// The provider of `platform` configured against this testbed.
    pub fn provider(&self, platform: Platform) -> Arc<dyn Provider> {
        provider(&self.settings(), platform)
    }

    pub fn providers(&self) -> Providers {
        Providers::from_settings(&self.settings()).expect("providers build")
    }

    pub fn webpush_device(&self, index: usize) -> Device {
        let subscription = &self.testbed.info().webpush.subscriptions[index];
        subscription_device(subscription)
    }
}

pub fn provider(settings: &ProviderSettings, platform: Platform) -> Arc<dyn Provider> {
    Providers::from_settings(settings)
        .expect("providers build")
        .provider(platform)
        .expect("the platform is configured")
        .clone()
}

/// One attempt to deliver [`three_from_priya`].
pub async fn send(provider: &Arc<dyn Provider>, device: &Device) -> Result<(), PushError> {
    provider.send(device, &three_from_priya()).await
}

/// A 503 with `Retry-After: 7` is a retry after 7 s; the next attempt goes through.
pub async fn an_outage_is_a_retry_after_the_services_delay(
    platform: Platform,
    device: impl Fn(&Bed) -> Device,
) {
    let bed = start().await;
    bed.testbed.script(Script {
        fail: vec![Failure {
            platform: Some(platform.name().into()),
            status: 503,
            retry_after: Some("7".into()),
            times: 1,
        }],
        ..Script::default()
    });
    let provider = bed.provider(platform);
    let device = device(&bed);
    match send(&provider, &device).await {
        Err(PushError::Retry { after, .. }) => assert_eq!(after, Some(Duration::from_secs(7))),
        other => panic!("expected a retry, got {other:?}"),
    }
    send(&provider, &device).await.expect("the outage is over");
    assert_eq!(bed.testbed.received(None).len(), 1);
}

pub fn subscription_device(subscription: &serde_json::Value) -> Device {
    let text = |v: &serde_json::Value| v.as_str().expect("string").to_owned();
    Device::Webpush {
        subscription: WebPushSubscription {
            endpoint: text(&subscription["endpoint"]),
            keys: WebPushKeys {
                p256dh: text(&subscription["keys"]["p256dh"]),
                auth: text(&subscription["keys"]["auth"]),
            },
        },
    }
}

pub fn three_from_priya() -> Notification {
    Notification {
        user: "bob".into(),
        title: "priya".into(),
        body: "3 new messages from priya".into(),
        data: [
            ("conversationId", "dm:bob:priya"),
            ("messageId", "m-3"),
            ("count", "3"),
            ("senderId", "priya"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect(),
        collapse_id: Some("dm:bob:priya".into()),
    }
}
