//! Lines of turns, one per conversation: a turn is taken synchronously, in the order its
//! caller decides (the arrival order), and [`Turn::ready`] waits until every turn taken before
//! it in its conversation is dropped. Work that awaits in between (a database query, a lookup
//! batch) may then finish in any order, and what comes after `ready` still happens in the
//! order the turns were taken.
//!
//! Used by the broker (a store that places concurrent appends in lock order, and the copies
//! of a Kafka-mode message for other nodes) and by the streamed store (its messages
//! reach Kafka in the order `accept` was called, whichever lookup answered first).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::oneshot;

/// Per conversation with an append in flight, the last turn taken: (its ticket, what resolves
/// when it is dropped).
#[derive(Debug, Default)]
pub struct Turns {
    last: Mutex<HashMap<String, (u64, oneshot::Receiver<()>)>>,
    tickets: AtomicU64,
}

/// A place in a conversation's line of appends.
#[derive(Debug)]
pub struct Turn {
    turns: Arc<Turns>,
    conversation: String,
    ticket: u64,
    previous: Option<oneshot::Receiver<()>>,
    /// Dropped with the turn: the next one's `previous` resolves.
    _done: oneshot::Sender<()>,
}

impl Turns {
    /// The next place in `conversation`'s line (synchronous: call it in arrival order).
    pub fn take(self: &Arc<Self>, conversation: &str) -> Turn {
        let (done_tx, done_rx) = oneshot::channel();
        let ticket = self.tickets.fetch_add(1, Ordering::Relaxed);
        let previous = self
            .last
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(conversation.to_owned(), (ticket, done_rx))
            .map(|(_, rx)| rx);
        Turn {
            turns: Arc::clone(self),
            conversation: conversation.to_owned(),
            ticket,
            previous,
            _done: done_tx,
        }
    }
}

impl Turn {
    /// Waits until every turn taken before this one in its conversation is dropped.
    pub async fn ready(&mut self) {
        if let Some(previous) = self.previous.take() {
            // Err: the previous turn is dropped, which is all this waits for.
            let _ = previous.await;
        }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let mut last = self.turns.last.lock().unwrap_or_else(|p| p.into_inner());
        if last
            .get(&self.conversation)
            .is_some_and(|(ticket, _)| *ticket == self.ticket)
        {
            last.remove(&self.conversation);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_turn_waits_for_the_ones_taken_before_it_in_its_conversation_only() {
        let turns = Arc::new(Turns::default());
        let first = turns.take("a");
        let mut second = turns.take("a");
        let mut other = turns.take("b");
        other.ready().await; // another conversation: at once
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(20), second.ready());
        assert!(waiting.await.is_err(), "waits while the first is held");
        drop(first);
        second.ready().await;
        drop(second);
        drop(other);
        assert!(
            turns.last.lock().expect("not poisoned").is_empty(),
            "nothing kept once the line is empty"
        );
    }
}
