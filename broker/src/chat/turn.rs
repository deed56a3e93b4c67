//! Appends to one conversation in the order this node took them, for a store that runs
//! appends concurrently and places each message (its position, `chat_store::Cursor`) in the
//! order they reach it: PostgreSQL, where each append is its own transaction and the one that
//! takes the conversation's row lock first gets the next position. Without turns, three
//! messages one client pipelines could be placed 3, 1, 2 though delivered 1, 2, 3.
//!
//! A turn is taken when the sequencer takes the request (arrival order, like the message id)
//! and waited for just before the store is called; dropping it, once the store answered, lets
//! the next one go. The row lock serializes a conversation's appends anyway, so waiting costs
//! only the statements before it.
//!
//! Every store takes turns, not only PostgreSQL: a send first checks its conversation's
//! membership, which asks the store when the conversation is not cached, and those lookups
//! finish in any order. Where the store places messages in the order it is called (the embedded
//! writer's queue, the streamed store's accept line) the turn is held only until the call has
//! entered that queue (`chat/op/send.rs`, `accept_in_turn`), so nothing waits in the common case.
//!
//! The same lines order a Kafka-mode message's copies for other nodes, sent once Kafka
//! acknowledged it (`ChatCore::crossings`, `sequencer::finish`): acks come in partition
//! order, but the tasks awaiting them may wake in any order.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use tokio::sync::oneshot;

/// The last turn taken in a conversation: its ticket, and what resolves when it is dropped.
type Last = (u64, oneshot::Receiver<()>);

/// Per conversation with an append in flight, its last turn.
#[derive(Debug, Default)]
pub struct Turns {
    last: Mutex<HashMap<Arc<str>, Last>>,
    tickets: AtomicU64,
}

/// A place in a conversation's line of appends.
#[derive(Debug)]
pub struct Turn {
    turns: Arc<Turns>,
    /// Shared with the map's key: one copy of the id per turn.
    conversation: Arc<str>,
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
        let conversation: Arc<str> = Arc::from(conversation);
        let previous = self
            .last
            .lock()
            .insert(Arc::clone(&conversation), (ticket, done_rx))
            .map(|(_, rx)| rx);
        Turn {
            turns: Arc::clone(self),
            conversation,
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
        let mut last = self.turns.last.lock();
        if last
            .get(&*self.conversation)
            .is_some_and(|(ticket, _)| *ticket == self.ticket)
        {
            last.remove(&*self.conversation);
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
            turns.last.lock().is_empty(),
            "nothing kept once the line is empty"
        );
    }
}
