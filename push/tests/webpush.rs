//! The Web Push provider against the testbed's push service, which checks the VAPID
//! signature and key and decrypts the aes128gcm body with the subscription's private key.

mod common;

use push_testbed::Script;
use stompbox_push::{
    Device, Platform, ProviderSettings, Providers, PushError, WebPushKeys, WebPushSubscription,
};

#[tokio::test]
async fn delivers_a_payload_only_the_subscription_can_decrypt() {
    let bed = common::start().await;
    let providers = bed.providers();
    let device = bed.webpush_device(0);
    providers
        .accepts(&device)
        .expect("the testbed's subscription is acceptable");
    let provider = providers
        .provider(Platform::Webpush)
        .expect("configured")
        .clone();
    common::send(&provider, &device).await.expect("sent");
    let received = bed.testbed.received(Some("webpush"));
    assert_eq!(received.len(), 1);
    let got = &received[0];
    assert_eq!(got.device, device.address());
    // Decrypted by the testbed with the subscription's private key.
    assert_eq!(got.payload["title"], "priya");
    assert_eq!(got.payload["body"], "3 new messages from priya");
    assert_eq!(got.payload["data"]["count"], "3");
    assert_eq!(got.payload["data"]["conversationId"], "dm:bob:priya");
    assert_eq!(got.headers["content-encoding"], "aes128gcm");
    assert_eq!(got.headers["ttl"], "86400");
    assert_eq!(got.headers["urgency"], "normal");
    // "dm:bob:priya" has ':' which a Topic may not: a digest of it stands in.
    let topic = &got.headers["topic"];
    assert_eq!(topic.len(), 32);
}

#[tokio::test]
async fn an_expired_subscription_is_a_dead_device() {
    let bed = common::start().await;
    let device = bed.webpush_device(1);
    bed.testbed.script(Script {
        dead: vec![device.address().to_owned()],
        ..Script::default()
    });
    let provider = bed.provider(Platform::Webpush);
    let gone = common::send(&provider, &device).await;
    assert!(matches!(gone, Err(PushError::DeadDevice(_))), "{gone:?}");
    // An endpoint the service never issued (or forgot): 404, also dead.
    let Device::Webpush { mut subscription } = bed.webpush_device(0) else {
        unreachable!()
    };
    subscription.endpoint = format!("{}/wp/unknown", bed.testbed.info().fcm.endpoint);
    let unknown = provider
        .send(
            &Device::Webpush { subscription },
            &common::three_from_priya(),
        )
        .await;
    assert!(
        matches!(unknown, Err(PushError::DeadDevice(_))),
        "{unknown:?}"
    );
}

#[tokio::test]
async fn an_outage_is_a_retry_with_the_services_retry_after() {
    common::an_outage_is_a_retry_after_the_services_delay(Platform::Webpush, |bed| {
        bed.webpush_device(0)
    })
    .await;
}
#[tokio::test]
async fn a_vapid_key_other_than_the_subscriptions_is_refused() {
    let bed = common::start().await;
    let other = common::start().await;
    let provider = common::provider(
        &ProviderSettings {
            vapid_key: Some(other.testbed.info().webpush.vapid_key.clone()),
            ..bed.settings()
        },
        Platform::Webpush,
    );
    let refused = common::send(&provider, &bed.webpush_device(0)).await;
    assert!(
        matches!(refused, Err(PushError::Rejected(ref why)) if why.contains("403")),
        "{refused:?}"
    );
    assert!(bed.testbed.received(None).is_empty());
}

#[tokio::test]
async fn keys_for_another_subscription_do_not_decrypt() {
    let bed = common::start().await;
    let provider = bed.provider(Platform::Webpush);
    // Subscription 0's endpoint with subscription 1's keys: the service cannot decrypt.
    let (Device::Webpush { subscription: zero }, Device::Webpush { subscription: one }) =
        (bed.webpush_device(0), bed.webpush_device(1))
    else {
        unreachable!()
    };
    let mixed = Device::Webpush {
        subscription: WebPushSubscription {
            endpoint: zero.endpoint,
            keys: one.keys,
        },
    };
    let refused = common::send(&provider, &mixed).await;
    assert!(
        matches!(refused, Err(PushError::Rejected(_))),
        "{refused:?}"
    );
    assert!(bed.testbed.received(None).is_empty());
}

#[tokio::test]
async fn registration_checks_the_endpoint_and_keys() {
    let bed = common::start().await;
    let providers = bed.providers();
    let Device::Webpush { subscription: good } = bed.webpush_device(0) else {
        unreachable!()
    };
    let with = |endpoint: &str, p256dh: &str, auth: &str| Device::Webpush {
        subscription: WebPushSubscription {
            endpoint: endpoint.into(),
            keys: WebPushKeys {
                p256dh: p256dh.into(),
                auth: auth.into(),
            },
        },
    };
    let (p256dh, auth) = (good.keys.p256dh.as_str(), good.keys.auth.as_str());
    assert!(
        providers
            .accepts(&with(&good.endpoint, p256dh, auth))
            .is_ok()
    );
    let refused =
        |device: Device| matches!(providers.accepts(&device), Err(PushError::InvalidDevice(_)));
    assert!(
        refused(with("https://attacker.example/wp/x", p256dh, auth)),
        "host not allowed"
    );
    assert!(
        refused(with(&good.endpoint.replace("https:", "ftp:"), p256dh, auth)),
        "not https"
    );
    assert!(
        refused(with(&good.endpoint, "BAAA", auth)),
        "p256dh not a point"
    );
    assert!(
        refused(with(&good.endpoint, p256dh, "c2hvcnQ")),
        "auth not 16 bytes"
    );
    // http only for a loopback host the operator allowed.
    assert!(
        providers
            .accepts(&with(
                &good.endpoint.replace("https:", "http:"),
                p256dh,
                auth
            ))
            .is_ok()
    );
    let public = Providers::from_settings(&ProviderSettings {
        webpush_allowed_hosts: vec!["push.example".into()],
        ..bed.settings()
    })
    .expect("providers build");
    assert!(matches!(
        public.accepts(&with("http://push.example/wp/x", p256dh, auth)),
        Err(PushError::InvalidDevice(_))
    ));
    assert!(
        public
            .accepts(&with("https://push.example/wp/x", p256dh, auth))
            .is_ok()
    );
}
