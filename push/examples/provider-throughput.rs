//! Notifications per second one process pushes through each provider to the local
//! push-testbed (loopback, TLS, the testbed verifying every token and decrypting every Web
//! Push payload): the provider side's cost, not the real services' latency.
//!
//!     cargo run --release -p stompbox-push --example provider-throughput -- [N] [CONCURRENCY]

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::Instant;

use stompbox_push::{Device, Notification, Platform, Provider};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let total: usize = args.next().map_or(Ok(2000), |a| a.parse())?;
    let concurrency: usize = args.next().map_or(Ok(32), |a| a.parse())?;
    let bed = common::start().await;
    let providers = bed.providers();
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
                token: bed.testbed.info().apns.tokens[0].clone(),
            },
        ),
        (Platform::Webpush, bed.webpush_device(0)),
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
            "{:>8}: {:>8.0} notifications/s ({total} in {:.2} s)",
            platform.name(),
            total as f64 / elapsed.as_secs_f64(),
            elapsed.as_secs_f64()
        );
    }
    Ok(())
}
