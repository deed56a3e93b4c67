//! The FCM HTTP v1 provider against the testbed's OAuth token endpoint and messages:send,
//! which verify the grant's RS256 signature and the bearer on every send.

mod common;

use std::time::Duration;

use push_testbed::{Failure, Script};
use stompbox_push::{Device, Platform, ProviderSettings, PushError};

fn fcm(token: &str) -> Device {
    Device::Fcm {
        token: token.into(),
    }
}

#[tokio::test]
async fn delivers_with_a_granted_bearer_and_reuses_the_token() {
    let bed = common::start().await;
    let provider = bed.provider(Platform::Fcm);
    for _ in 0..3 {
        common::send(&provider, &fcm("tok-1")).await.expect("sent");
    }
    let received = bed.testbed.received(Some("fcm"));
    assert_eq!(received.len(), 3);
    let message = &received[0].payload;
    assert_eq!(message["token"], "tok-1");
    assert_eq!(message["notification"]["title"], "priya");
    assert_eq!(message["notification"]["body"], "3 new messages from priya");
    assert_eq!(message["data"]["count"], "3");
    assert_eq!(message["data"]["messageId"], "m-3");
    assert_eq!(message["android"]["collapse_key"], "dm:bob:priya");
    assert_eq!(
        message["apns"]["headers"]["apns-collapse-id"],
        "dm:bob:priya"
    );
    assert_eq!(
        bed.testbed.stats().oauth_grants,
        1,
        "the access token is cached"
    );
}

#[tokio::test]
async fn concurrent_sends_share_one_grant() {
    let bed = common::start().await;
    let provider = bed.provider(Platform::Fcm);
    let mut sends = tokio::task::JoinSet::new();
    for i in 0..8 {
        let provider = provider.clone();
        sends.spawn(async move { common::send(&provider, &fcm(&format!("tok-{i}"))).await });
    }
    while let Some(result) = sends.join_next().await {
        result.expect("joined").expect("sent");
    }
    assert_eq!(bed.testbed.received(Some("fcm")).len(), 8);
    assert_eq!(bed.testbed.stats().oauth_grants, 1, "one refresh at a time");
}

#[tokio::test]
async fn the_token_is_refreshed_before_it_expires() {
    let bed = common::start_with(|o| o.access_token_ttl = Duration::from_secs(2)).await;
    let provider = bed.provider(Platform::Fcm);
    common::send(&provider, &fcm("tok-1")).await.expect("sent");
    // A 2 s token is refreshed after half its life.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    common::send(&provider, &fcm("tok-1")).await.expect("sent");
    assert_eq!(bed.testbed.stats().oauth_grants, 2);
    assert!(
        bed.testbed.attempts().iter().all(|a| a.status == 200),
        "never sent an expired token"
    );
}

#[tokio::test]
async fn a_revoked_token_gets_one_fresh_grant_and_one_more_try() {
    let bed = common::start().await;
    let provider = bed.provider(Platform::Fcm);
    common::send(&provider, &fcm("tok-1")).await.expect("sent");
    bed.testbed.script(Script {
        revoke_access_tokens: true,
        ..Script::default()
    });
    common::send(&provider, &fcm("tok-1"))
        .await
        .expect("sent after refresh");
    let statuses: Vec<u16> = bed.testbed.attempts().iter().map(|a| a.status).collect();
    assert_eq!(statuses, [200, 401, 200]);
    assert_eq!(bed.testbed.stats().oauth_grants, 2);
}

#[tokio::test]
async fn unregistered_and_invalid_tokens_are_dead_devices() {
    let bed = common::start().await;
    bed.testbed.script(Script {
        dead: vec!["tok-gone".into()],
        invalid: vec!["tok-bad".into()],
        ..Script::default()
    });
    let provider = bed.provider(Platform::Fcm);
    let gone = common::send(&provider, &fcm("tok-gone")).await;
    assert!(matches!(gone, Err(PushError::DeadDevice(_))), "{gone:?}");
    let bad = common::send(&provider, &fcm("tok-bad")).await;
    assert!(matches!(bad, Err(PushError::DeadDevice(_))), "{bad:?}");
    assert!(bed.testbed.received(None).is_empty());
}

#[tokio::test]
async fn an_outage_is_a_retry_with_the_services_retry_after() {
    common::an_outage_is_a_retry_after_the_services_delay(Platform::Fcm, |_| fcm("tok-1")).await;
}

#[tokio::test]
async fn retry_after_may_be_an_http_date() {
    let bed = common::start().await;
    let date = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(120));
    bed.testbed.script(Script {
        fail: vec![Failure {
            platform: None,
            status: 429,
            retry_after: Some(date),
            times: 1,
        }],
        ..Script::default()
    });
    let provider = bed.provider(Platform::Fcm);
    match common::send(&provider, &fcm("tok-1")).await {
        Err(PushError::Retry {
            after: Some(after), ..
        }) => assert!(
            after > Duration::from_secs(100) && after <= Duration::from_secs(120),
            "{after:?}"
        ),
        other => panic!("expected a retry with a date, got {other:?}"),
    }
}
#[tokio::test]
async fn a_grant_signed_with_another_key_is_refused() {
    let bed = common::start().await;
    let other = common::start().await;
    // This testbed's service account, but the private key of another one.
    let info = bed.testbed.info();
    let mut account: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&info.fcm.credentials).expect("credentials"))
            .expect("json");
    let foreign: serde_json::Value = serde_json::from_slice(
        &std::fs::read(&other.testbed.info().fcm.credentials).expect("credentials"),
    )
    .expect("json");
    account["private_key"] = foreign["private_key"].clone();
    let dir = tempfile::tempdir().expect("temp dir");
    let forged = dir.path().join("forged.json");
    std::fs::write(&forged, account.to_string()).expect("write");
    let provider = common::provider(
        &ProviderSettings {
            fcm_credentials: Some(forged),
            ..bed.settings()
        },
        Platform::Fcm,
    );
    let refused = common::send(&provider, &fcm("tok-1")).await;
    assert!(
        matches!(refused, Err(PushError::Rejected(_))),
        "{refused:?}"
    );
    assert_eq!(bed.testbed.stats().oauth_grants, 0);
    assert!(bed.testbed.received(None).is_empty());
}

#[tokio::test]
async fn an_endpoint_the_ca_file_does_not_vouch_for_is_unreachable() {
    let bed = common::start().await;
    let provider = common::provider(
        &ProviderSettings {
            ca_file: None,
            ..bed.settings()
        },
        Platform::Fcm,
    );
    let result = common::send(&provider, &fcm("tok-1")).await;
    assert!(matches!(result, Err(PushError::Retry { .. })), "{result:?}");
}
