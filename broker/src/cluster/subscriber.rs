//! The one subscriber connection per node: keeps Redis's subscription set equal to local
//! interest, hands every message to [`Inbound`], and survives Redis going away.
//!
//! On loss (the stream ends, or a periodic PING goes unanswered) it logs once, marks the node
//! disconnected, and reconnects with jittered exponential backoff; on success it subscribes to
//! every channel currently wanted (local interest is the truth, Redis's set is derived), so
//! cross-node delivery resumes without anyone resubscribing. Local delivery never depends on
//! this task.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{PubSubSink, PubSubStream};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::backoff::Backoff;
use super::channel::{CONTROL, Channel};
use super::health::Health;
use super::inbound::Inbound;
use super::interest::Interest;

/// Longest wait for a connection or a command reply before the link counts as down.
const TIMEOUT: Duration = Duration::from_secs(3);
/// A silent but dead TCP connection (no RST, e.g. a partition) is noticed within this period.
const PING_EVERY: Duration = Duration::from_secs(5);
/// Channels per SUBSCRIBE command when resubscribing everything after a reconnect.
const CHUNK: usize = 256;

/// Why a connected period ended.
enum Lost {
    Shutdown,
    Link(String),
}

pub async fn run(
    client: redis::Client,
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
            c = tokio::time::timeout(TIMEOUT, client.get_async_pubsub()) => c,
        };
        let failure = match connected {
            Ok(Ok(pubsub)) => {
                let (sink, stream) = pubsub.split();
                match serve(sink, stream, &interest, &health, &inbound, &done, first).await {
                    Lost::Shutdown => return,
                    Lost::Link(why) => {
                        first = false;
                        outage_logged = false;
                        backoff.reset();
                        why
                    }
                }
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => "connect timed out".to_string(),
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
    mut sink: PubSubSink,
    mut stream: PubSubStream,
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
    if let Err(e) = resubscribe(&mut sink, interest, &wanted, &mut subscribed).await {
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
            message = stream.next() => match message {
                Some(message) => inbound.handle(&message),
                None => return Lost::Link("connection closed".into()),
            },
            () = interest.wake.notified() => {
                if let Err(e) = reconcile(&mut sink, interest, &mut subscribed).await {
                    return Lost::Link(e);
                }
                channels.set_channels(subscribed.len());
            }
            _ = ping.tick() => {
                // In subscribed mode PING answers ["pong", ""], not a string: accept any reply.
                match tokio::time::timeout(TIMEOUT, sink.ping::<redis::Value>()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return Lost::Link(e.to_string()),
                    Err(_) => return Lost::Link("PING timed out".into()),
                }
            }
        }
    }
}

async fn resubscribe(
    sink: &mut PubSubSink,
    interest: &Interest,
    wanted: &[Channel],
    subscribed: &mut HashSet<Channel>,
) -> Result<(), String> {
    within(sink.subscribe(CONTROL)).await?;
    let (globs, plain): (Vec<&Channel>, Vec<&Channel>) = wanted.iter().partition(|c| c.is_glob());
    for chunk in plain.chunks(CHUNK) {
        let names: Vec<String> = chunk.iter().map(ToString::to_string).collect();
        within(sink.subscribe(names)).await?;
    }
    for chunk in globs.chunks(CHUNK) {
        let names: Vec<String> = chunk.iter().map(ToString::to_string).collect();
        within(sink.psubscribe(names)).await?;
    }
    subscribed.extend(wanted.iter().cloned());
    interest.confirm(wanted.iter().cloned());
    Ok(())
}

/// Subscribes what became wanted and drops what no local subscriber wants any more.
async fn reconcile(
    sink: &mut PubSubSink,
    interest: &Interest,
    subscribed: &mut HashSet<Channel>,
) -> Result<(), String> {
    for channel in interest.take_changed() {
        let wanted = interest.wanted(&channel);
        let name = channel.to_string();
        match (wanted, subscribed.contains(&channel), channel.is_glob()) {
            (true, false, false) => within(sink.subscribe(name)).await?,
            (true, false, true) => within(sink.psubscribe(name)).await?,
            (false, true, false) => within(sink.unsubscribe(name)).await?,
            (false, true, true) => within(sink.punsubscribe(name)).await?,
            _ => continue,
        }
        if wanted {
            subscribed.insert(channel.clone());
            interest.confirm([channel]);
        } else {
            interest.unconfirm(&channel);
            subscribed.remove(&channel);
        }
    }
    Ok(())
}

async fn within(command: impl Future<Output = redis::RedisResult<()>>) -> Result<(), String> {
    match tokio::time::timeout(TIMEOUT, command).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("subscribe timed out".into()),
    }
}
