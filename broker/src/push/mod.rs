//! Push notifications for users with no online session anywhere (docs/push.md): this module
//! decides *when* and *to whom*; the `stompbox-push` crate knows *how* (each provider's
//! protocol).
//!
//! The chat emits an [`OfflineEvent`] per offline recipient of a stored message
//! (`chat/effect.rs`; presence is cluster-wide in cluster mode). Here each event is folded into
//! its user's window ([`window`]); the node that opened the window fires it after
//! `--push-coalesce`: unless the user came online or read/received the newest message
//! meanwhile, it builds one notification ([`compose`]) for the user's devices and queues it
//! for [`dispatch`]. Nothing here runs on the chat's path: events arrive on a broadcast
//! channel, and a slow provider only fills (and sheds) the dispatch queue.

pub mod compose;
pub mod dispatch;
pub mod window;

use std::sync::Arc;

use chat_store::{ChatStore, ReceiptStatus};
use stompbox_push::{Device, Providers};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use crate::chat::presence::PresenceBackend;
use crate::chat::{Chat, OfflineEvent};
use crate::config::PushConfig;
use crate::metrics;
use dispatch::{Dispatcher, Job};
use window::{Claim, Windows};

/// The push service of one node.
#[derive(Debug)]
pub struct Push {
    config: PushConfig,
    store: Arc<dyn ChatStore>,
    presence: Arc<dyn PresenceBackend>,
    windows: Arc<dyn Windows>,
    dispatcher: Arc<Dispatcher>,
    /// Whether a webhook hears every notification (then a user without devices still gets one).
    webhook: bool,
}

impl Push {
    /// Starts reading `chat`'s offline events and the dispatch workers; all stop with
    /// `shutdown`. The chat's store and presence answer the checks at fire time.
    pub fn start(
        config: PushConfig,
        providers: Providers,
        chat: &Chat,
        windows: Arc<dyn Windows>,
        tasks: &TaskTracker,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        let events = chat.offline_events();
        let store = Arc::clone(&chat.core().store);
        let presence = Arc::clone(&chat.core().presence);
        let dispatcher = Dispatcher::new(config.push_queue, config.push_queue_bytes);
        let webhook = providers.webhook.is_some();
        dispatcher.start(providers, Arc::clone(&store), tasks, shutdown.clone());
        let push = Arc::new(Self {
            config,
            store,
            presence,
            windows,
            dispatcher,
            webhook,
        });
        let (me, tracker) = (Arc::clone(&push), tasks.clone());
        tasks.spawn(async move { me.intake(events, &tracker, shutdown).await });
        push
    }

    async fn intake(
        self: Arc<Self>,
        mut events: broadcast::Receiver<OfflineEvent>,
        tasks: &TaskTracker,
        shutdown: CancellationToken,
    ) {
        loop {
            let event = tokio::select! {
                () = shutdown.cancelled() => return,
                event = events.recv() => event,
            };
            let event = match event {
                Ok(event) => event,
                Err(RecvError::Lagged(missed)) => {
                    metrics::get().push.lagged.inc_by(missed);
                    warn!(missed, "push fell behind the chat: offline events missed");
                    continue;
                }
                Err(RecvError::Closed) => return,
            };
            let Some(claim) = self.windows.add(&event, self.config.push_coalesce).await else {
                continue;
            };
            metrics::get().push.windows.inc();
            let (me, shutdown) = (Arc::clone(&self), shutdown.clone());
            tasks.spawn(async move {
                tokio::select! {
                    () = shutdown.cancelled() => {}
                    () = tokio::time::sleep(me.config.push_coalesce) => {
                        me.fire(&event.user, &claim).await;
                    }
                }
            });
        }
    }

    /// The end of `user`'s window: one notification, unless it was cancelled meanwhile.
    async fn fire(&self, user: &str, claim: &Claim) {
        let m = &metrics::get().push;
        let Some(window) = self.windows.take(user, claim).await else {
            return;
        };
        let users = [user.to_owned()];
        if self
            .presence
            .statuses(&users)
            .await
            .first()
            .is_some_and(|s| s.0)
        {
            m.cancelled("online");
            return;
        }
        match self.store.receipts(window.newest).await {
            Ok(receipts) => {
                let seen = receipts
                    .iter()
                    .any(|(u, status, _)| u == user && *status >= ReceiptStatus::Delivered);
                if seen {
                    m.cancelled("delivered");
                    return;
                }
            }
            // Unknown: a spurious notification is better than a lost one.
            Err(e) => debug!(error = %e, "push: receipt state unknown; notifying"),
        }
        let devices: Vec<Device> = match self.store.devices_of(user).await {
            Ok(devices) => devices
                .iter()
                .filter_map(|d| serde_json::from_str(&d.registration).ok())
                .collect(),
            Err(e) => {
                warn!(%user, error = %e, "push: cannot read the user's devices; window lost");
                return;
            }
        };
        if devices.is_empty() && !self.webhook {
            m.cancelled("no_device");
            return;
        }
        let notification = compose::notification(user, &window, self.config.push_preview);
        self.dispatcher.enqueue(Job {
            notification,
            devices,
        });
    }
}
