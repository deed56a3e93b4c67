//! Starting a push-testbed for a test and configuring providers against it.

#![allow(dead_code)] // each test file uses a different part

use std::time::Duration;

use push_testbed::{Options, Testbed};
use stompbox_push::{
    Device, Notification, ProviderSettings, Providers, WebPushKeys, WebPushSubscription,
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

    pub fn providers(&self) -> Providers {
        Providers::from_settings(&self.settings()).expect("providers build")
    }

    pub fn webpush_device(&self, index: usize) -> Device {
        let subscription = &self.testbed.info().webpush.subscriptions[index];
        subscription_device(subscription)
    }
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

pub const SECONDS_7: Duration = Duration::from_secs(7);
