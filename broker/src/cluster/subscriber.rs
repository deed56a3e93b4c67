//! The one subscriber connection per node: keeps Redis's subscription set equal to local
//! interest, hands every message to [`Inbound`], and survives Redis going away.
//!
//! On loss (the stream ends, or a periodic PING goes unanswered) it logs once, marks the node
//! disconnected, and reconnects with jittered exponential backoff; on success it subscribes to
//! every channel currently wanted (local interest is the truth, Redis's set is derived), so
//! cross-node delivery resumes without anyone resubscribing. Local delivery never depends on
//! this task. The connection itself, for one server or a Redis Cluster, is `pubsub.rs`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::backoff::Backoff;
use super::channel::Channel;
use super::health::Health;
use super::inbound::Inbound;
use super::interest::Interest;
use super::link::Link;
use super::pubsub::{Event, PubSub};

/// A silent but dead TCP connection (no RST, e.g. a partition) is noticed within this period.
const PING_EVERY: Duration = Duration::from_secs(5);

/// Why a connected period ended.
enum Lost {
    Shutdown,
    Link(String),
}

pub async fn run(
    link: Link,
    interest: Arc<Interest>,
    health: Arc<Health>,
    inbound: Inbound,
    done: CancellationToken,
) {
    let mut backoff = Backoff::new();
    let mut first = true;
    let mut outage_logged = false;
    loop {
        let connected = tokio::select! {
            () = done.cancelled() => return,
            c = PubSub::open(&link, &health) => c,
        };
        let failure = match connected {
            Ok(pubsub) => match serve(pubsub, &interest, &health, &inbound, &done, first).await {
                Lost::Shutdown => return,
                Lost::Link(why) => {
                    first = false;
                    outage_logged = false;
                    backoff.reset();
                    why
                }
            },
            Err(e) => e,
        };
        health.disconnected();
        interest.unconfirm_all();
        if !outage_logged {
            outage_logged = true;
            warn!(error = %failure, "redis subscriber connection lost: cross-node delivery paused, local delivery continues; reconnecting");
        } else {
            debug!(error = %failure, "redis still unreachable");
        }
        let delay = backoff.next_delay();
        tokio::select! {
            () = done.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
    }
}

/// One connected period: full resubscribe, then messages and interest changes until the link
/// fails or the node stops.
async fn serve(
    mut pubsub: PubSub,
    interest: &Interest,
    health: &Health,
    inbound: &Inbound,
    done: &CancellationToken,
    first: bool,
) -> Lost {
    let mut subscribed: HashSet<Channel> = HashSet::new();
    // Everything wanted now; later changes arrive through `take_changed`.
    interest.take_changed();
    let wanted = interest.all();
    if let Err(e) = resubscribe(&mut pubsub, interest, &wanted, &mut subscribed).await {
        return Lost::Link(e);
    }
    health.connected(first);
    let channels = &crate::metrics::get().cluster;
    channels.set_channels(subscribed.len());
    if first {
        info!(channels = subscribed.len(), "redis subscriber connected");
    } else {
        info!(
            channels = subscribed.len(),
            "redis connection restored: resubscribed, cross-node delivery resumed"
        );
    }
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        tokio::select! {
            biased;
            () = done.cancelled() => return Lost::Shutdown,
            event = pubsub.next() => match event {
                Event::Message(message) => inbound.handle(&message),
                Event::Lost => return Lost::Link("connection closed".into()),
                Event::Dropped(name) => {
                    if subscribed.iter().any(|c| c.to_string() == name) {
                        return Lost::Link(format!("redis dropped the subscription of {name} (its slot moved)"));
                    }
                }
            },
            () = interest.wake.notified() => {
                if let Err(e) = reconcile(&mut pubsub, interest, &mut subscribed).await {
                    return Lost::Link(e);
                }
                channels.set_channels(subscribed.len());
            }
            _ = ping.tick() => {
                if let Err(e) = pubsub.ping().await {
                    return Lost::Link(e);
                }
            }
        }
    }
}

async fn resubscribe(
    pubsub: &mut PubSub,
    interest: &Interest,
    wanted: &[Channel],
    subscribed: &mut HashSet<Channel>,
) -> Result<(), String> {
    pubsub.subscribe_control().await?;
    pubsub.subscribe(wanted).await?;
    subscribed.extend(wanted.iter().cloned());
    interest.confirm(wanted.iter().cloned());
    Ok(())
}

/// Subscribes what became wanted and drops what no local subscriber wants any more.
async fn reconcile(
    pubsub: &mut PubSub,
    interest: &Interest,
    subscribed: &mut HashSet<Channel>,
) -> Result<(), String> {
    for channel in interest.take_changed() {
        let wanted = interest.wanted(&channel);
        match (wanted, subscribed.contains(&channel)) {
            (true, false) => pubsub.subscribe(std::slice::from_ref(&channel)).await?,
            (false, true) => {
                // Forgotten first: the server's SUNSUBSCRIBE answer is then no surprise.
                subscribed.remove(&channel);
                interest.unconfirm(&channel);
                pubsub.unsubscribe(&channel).await?;
                continue;
            }
            _ => continue,
        }
        subscribed.insert(channel.clone());
        interest.confirm([channel]);
    }
    Ok(())
}
