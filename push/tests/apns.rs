//! The APNs provider against the testbed's APNs, which serves HTTP/2 only and checks the
//! provider token's ES256 signature, key id, team id and age, and the topic.

mod common;

use push_testbed::Script;
use stompbox_push::{Device, Platform, ProviderSettings, PushError};

fn apns(token: &str) -> Device {
    Device::Apns {
        token: token.into(),
    }
}

#[tokio::test]
async fn delivers_an_alert_over_http2_reusing_one_provider_token() {
    let bed = common::start().await;
    let provider = bed.provider(Platform::Apns);
    let token = bed.testbed.info().apns.tokens[0].clone();
    for _ in 0..3 {
        common::send(&provider, &apns(&token)).await.expect("sent");
    }
    let received = bed.testbed.received(Some("apns"));
    assert_eq!(received.len(), 3);
    let first = &received[0];
    assert_eq!(first.device, token);
    assert_eq!(first.headers["apns-push-type"], "alert");
    assert_eq!(first.headers["apns-topic"], bed.testbed.info().apns.topic);
    assert_eq!(first.headers["apns-collapse-id"], "dm:bob:priya");
    assert_eq!(first.headers["apns-priority"], "10");
    assert_eq!(first.payload["aps"]["alert"]["title"], "priya");
    assert_eq!(
        first.payload["aps"]["alert"]["body"],
        "3 new messages from priya"
    );
    assert_eq!(first.payload["aps"]["thread-id"], "dm:bob:priya");
    assert_eq!(first.payload["count"], "3");
    assert_eq!(first.payload["senderId"], "priya");
    assert_eq!(
        bed.testbed.stats().apns_provider_tokens,
        1,
        "the provider token is reused"
    );
}

#[tokio::test]
async fn unregistered_and_bad_tokens_are_dead_devices() {
    let bed = common::start().await;
    let tokens = bed.testbed.info().apns.tokens.clone();
    bed.testbed.script(Script {
        dead: vec![tokens[1].clone()],
        invalid: vec![tokens[2].clone()],
        ..Script::default()
    });
    let provider = bed.provider(Platform::Apns);
    let gone = common::send(&provider, &apns(&tokens[1])).await;
    assert!(matches!(gone, Err(PushError::DeadDevice(_))), "{gone:?}");
    let bad = common::send(&provider, &apns(&tokens[2])).await;
    assert!(matches!(bad, Err(PushError::DeadDevice(_))), "{bad:?}");
    let statuses: Vec<u16> = bed.testbed.attempts().iter().map(|a| a.status).collect();
    assert_eq!(statuses, [410, 400]);
}

#[tokio::test]
async fn an_outage_is_a_retry_with_the_services_retry_after() {
    common::an_outage_is_a_retry_after_the_services_delay(Platform::Apns, |bed| {
        apns(&bed.testbed.info().apns.tokens[0])
    })
    .await;
}
#[tokio::test]
async fn a_wrong_team_id_or_key_id_is_refused() {
    let bed = common::start().await;
    let token = bed.testbed.info().apns.tokens[0].clone();
    for settings in [
        ProviderSettings {
            apns_team_id: Some("WRONGTEAM1".into()),
            ..bed.settings()
        },
        ProviderSettings {
            apns_key_id: Some("WRONGKEY01".into()),
            ..bed.settings()
        },
    ] {
        let provider = common::provider(&settings, Platform::Apns);
        let refused = common::send(&provider, &apns(&token)).await;
        assert!(
            matches!(refused, Err(PushError::Rejected(ref why)) if why.contains("InvalidProviderToken")),
            "{refused:?}"
        );
    }
    assert!(bed.testbed.received(None).is_empty());
}

#[tokio::test]
async fn a_key_other_than_the_registered_one_is_refused() {
    let bed = common::start().await;
    let other = common::start().await;
    let provider = common::provider(
        &ProviderSettings {
            apns_key: Some(other.testbed.info().apns.key.clone()),
            ..bed.settings()
        },
        Platform::Apns,
    );
    let token = bed.testbed.info().apns.tokens[0].clone();
    let refused = common::send(&provider, &apns(&token)).await;
    assert!(
        matches!(refused, Err(PushError::Rejected(_))),
        "{refused:?}"
    );
    assert!(bed.testbed.received(None).is_empty());
}

#[tokio::test]
async fn registration_accepts_only_hex_tokens() {
    let bed = common::start().await;
    let providers = bed.providers();
    assert!(
        providers
            .accepts(&apns(&bed.testbed.info().apns.tokens[0]))
            .is_ok()
    );
    assert!(matches!(
        providers.accepts(&apns("not-a-token")),
        Err(PushError::InvalidDevice(_))
    ));
    assert!(matches!(
        providers.accepts(&apns("../../v1/x")),
        Err(PushError::InvalidDevice(_))
    ));
}
