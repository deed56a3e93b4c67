//! Notifications per second one process pushes through each provider to the local
//! push-testbed (loopback, TLS, the testbed verifying every token and decrypting every Web
//! Push payload): the provider side's cost, not the real services' latency.
//!
//!     cargo run --release -p stompbox-push --example provider-throughput -- [N] [CONCURRENCY]

use std::sync::Arc;
use std::time::Instant;

use push_testbed::{Options, Testbed};
use stompbox_push::{
    Device, Notification, Platform, Provider, ProviderSettings, Providers, WebPushKeys,
    WebPushSubscription,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let total: usize = args.next().map_or(Ok(2000), |a| a.parse())?;
    let concurrency: usize = args.next().map_or(Ok(32), |a| a.parse())?;
    let dir = tempfile::tempdir()?;
    let testbed = Testbed::start(Options::new(dir.path())).await?;
    let info = testbed.info();
    let providers = Providers::from_settings(&ProviderSettings {
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
    })?;
    let subscription = &info.webpush.subscriptions[0];
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    let devices = [
        (
            Platform::Fcm,
            Device::Fcm {
                token: "bench-token".into(),
            },
        ),
        (
            Platform::Apns,
            Device::Apns {
                token: info.apns.tokens[0].clone(),
            },
        ),
        (
            Platform::Webpush,
            Device::Webpush {
                subscription: WebPushSubscription {
                    endpoint: text(&subscription["endpoint"]),
                    keys: WebPushKeys {
                        p256dh: text(&subscription["keys"]["p256dh"]),
                        auth: text(&subscription["keys"]["auth"]),
                    },
                },
            },
        ),
    ];
    let notification = Arc::new(Notification {
        user: "bob".into(),
        title: "priya".into(),
        body: "3 new messages from priya".into(),
        data: [("count".to_owned(), "3".to_owned())].into(),
        collapse_id: Some("dm-bob-priya".into()),
    });
    println!("{total} notifications per provider, {concurrency} in flight");
    for (platform, device) in devices {
        let provider: Arc<dyn Provider> = providers
            .provider(platform)
            .ok_or("not configured")?
            .clone();
        // One warm-up send: the grant, the connection, the provider token.
        provider.send(&device, &notification).await?;
        let started = Instant::now();
        let mut workers = tokio::task::JoinSet::new();
        for worker in 0..concurrency {
            let (provider, device, notification) =
                (provider.clone(), device.clone(), notification.clone());
            let share = total / concurrency + usize::from(worker < total % concurrency);
            workers.spawn(async move {
                for _ in 0..share {
                    provider.send(&device, &notification).await?;
                }
                Ok::<_, stompbox_push::PushError>(())
            });
        }
        while let Some(done) = workers.join_next().await {
            done??;
        }
        let elapsed = started.elapsed();
        println!(
            "{platform:>8}: {:>8.0} notifications/s ({total} in {:.2} s)",
            total as f64 / elapsed.as_secs_f64(),
            elapsed.as_secs_f64()
        );
    }
    Ok(())
}
