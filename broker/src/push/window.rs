//! Coalescing: a user's pending notification over one `--push-coalesce` window, and the
//! [`Windows`] seam that holds it: in process on a single node ([`LocalWindows`]), in Redis
//! in a cluster (`cluster/push.rs`), so messages stored on any node fold into one window and
//! exactly one node (the one that opened it) fires it.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::future::{self, BoxFuture};
use parking_lot::Mutex;

use crate::chat::OfflineEvent;

/// What a user's window holds when it fires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// Messages folded in.
    pub count: u64,
    /// The newest message (by id) and what the notification says about it.
    pub newest: u64,
    pub conversation_id: String,
    pub sender_id: String,
    pub group_name: Option<String>,
    pub content: String,
    /// Messages of more than one conversation.
    pub mixed: bool,
}

impl Window {
    pub fn open(event: &OfflineEvent) -> Self {
        Window {
            count: 1,
            newest: event.message_id,
            conversation_id: event.conversation_id.clone(),
            sender_id: event.sender_id.clone(),
            group_name: event.group_name.clone(),
            content: event.content.to_string(),
            mixed: false,
        }
    }

    /// Folds one more message in (ids from several nodes may arrive out of order).
    pub fn fold(&mut self, event: &OfflineEvent) {
        self.count += 1;
        self.mixed |= event.conversation_id != self.conversation_id;
        if event.message_id > self.newest {
            let mixed = self.mixed;
            *self = Window {
                count: self.count,
                mixed,
                ..Window::open(event)
            };
        }
    }
}

/// Where pending windows live. `add` tells the caller whether it opened the window (and so
/// owns it: it alone calls `take` when the window ends); `take` hands the window over once.
pub trait Windows: Send + Sync + std::fmt::Debug + 'static {
    /// Folds `event` into its user's window; `Some(claim)` when this call opened it. A window
    /// must fire within `window` plus the seam's grace, or it may be opened again elsewhere.
    fn add<'a>(&'a self, event: &'a OfflineEvent, window: Duration)
    -> BoxFuture<'a, Option<Claim>>;

    /// The window `claim` opened, removed; `None` if it is no longer this claim's (it lapsed
    /// and another opened it, or it was taken already).
    fn take<'a>(&'a self, user: &'a str, claim: &'a Claim) -> BoxFuture<'a, Option<Window>>;
}

/// Proof of having opened a window: what `take` checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim(pub String);

/// One node: windows in a map.
#[derive(Debug, Default)]
pub struct LocalWindows {
    open: Mutex<HashMap<String, Window>>,
}

impl Windows for LocalWindows {
    fn add<'a>(&'a self, event: &'a OfflineEvent, _: Duration) -> BoxFuture<'a, Option<Claim>> {
        let mut open = self.open.lock();
        let opened = match open.get_mut(&event.user) {
            Some(window) => {
                window.fold(event);
                None
            }
            None => {
                open.insert(event.user.clone(), Window::open(event));
                Some(Claim(String::new()))
            }
        };
        Box::pin(future::ready(opened))
    }

    fn take<'a>(&'a self, user: &'a str, _: &'a Claim) -> BoxFuture<'a, Option<Window>> {
        Box::pin(future::ready(self.open.lock().remove(user)))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    pub(crate) fn event(user: &str, id: u64, conversation: &str, sender: &str) -> OfflineEvent {
        OfflineEvent {
            user: user.into(),
            message_id: id,
            conversation_id: conversation.into(),
            sender_id: sender.into(),
            group_name: None,
            content: Arc::from(format!("m{id}")),
        }
    }

    #[tokio::test]
    async fn the_first_message_opens_the_window_and_later_ones_fold_in() {
        let windows = LocalWindows::default();
        let w = Duration::from_secs(3);
        let claim = windows.add(&event("bob", 5, "d:a:b", "ann"), w).await;
        assert!(claim.is_some());
        assert!(
            windows
                .add(&event("bob", 7, "d:a:b", "ann"), w)
                .await
                .is_none()
        );
        assert!(
            windows
                .add(&event("bob", 6, "d:a:b", "ann"), w)
                .await
                .is_none()
        );
        let window = windows
            .take("bob", &claim.expect("opened"))
            .await
            .expect("window");
        assert_eq!((window.count, window.newest), (3, 7));
        assert_eq!(window.content, "m7");
        assert!(!window.mixed);
        assert!(windows.take("bob", &Claim(String::new())).await.is_none());
    }

    #[test]
    fn messages_of_two_conversations_are_mixed() {
        let mut window = Window::open(&event("bob", 5, "d:a:b", "ann"));
        window.fold(&event("bob", 4, "g:1", "cat"));
        assert!(window.mixed);
        assert_eq!(window.newest, 5);
        window.fold(&event("bob", 9, "d:a:b", "ann"));
        assert!(window.mixed, "stays mixed when the newest changes");
    }
}
