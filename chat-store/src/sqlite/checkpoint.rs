//! WAL checkpoints off the commit path: a thread with its own connection copies the WAL back
//! into the database file (PASSIVE: it never waits for, nor blocks, the writer or the readers).
//!
//! Why: SQLite's automatic checkpoint runs inside the COMMIT that crosses its threshold, on the
//! writer's thread. With `synchronous=FULL` that commit also writes ~1,000 pages to random
//! places in the database file and fsyncs it, and every append queued behind it waits
//! (issue 17: p99 send→RECEIPT grew with the store, since a bigger store dirties more distinct
//! index pages per batch, so checkpoints come more often and cost more). Here the writer only
//! appends to the WAL and fsyncs it; the copy happens beside it.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

use crate::error::StoreError;

/// How often the WAL is copied back: often enough that the WAL stays a few MiB at chat rates
/// (so reads stay fast and a restart's recovery is short), seldom enough that the database
/// file's fsync is paid for many commits at once.
const INTERVAL: Duration = Duration::from_millis(250);

/// The writer's own automatic checkpoint, kept only as a backstop should this thread fall
/// behind or stop: pages of WAL (4 KiB each, so 64 MiB) before a commit checkpoints itself.
pub(crate) const WRITER_BACKSTOP_PAGES: i64 = 16_384;

/// The checkpointing thread; dropping it stops the thread (joined, so the file is closed).
#[derive(Debug)]
pub(crate) struct Checkpointer {
    stop_tx: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts checkpointing through `conn`, a connection of its own to the database file.
    pub(crate) fn spawn(conn: Connection) -> Result<Self, StoreError> {
        let (stop_tx, stop_rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("chat-store-checkpoint".into())
            .spawn(move || run(&conn, &stop_rx))
            .map_err(|e| StoreError::Internal(format!("cannot start the checkpointer: {e}")))?;
        Ok(Self {
            stop_tx: Some(stop_tx),
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop_tx = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(conn: &Connection, stop_rx: &mpsc::Receiver<()>) {
    while let Err(RecvTimeoutError::Timeout) = stop_rx.recv_timeout(INTERVAL) {
        // A failure (the file busy past the timeout, a full disk) is left to the next round
        // and, should it last, to the writer's backstop; the writer reports its own errors.
        let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use crate::{ChatStore, ConversationKind, NewConversation, SqliteStore, StoredMessage};

    /// The WAL is copied back without the writer reaching its own (backstop) threshold: with
    /// only SQLite's automatic checkpoint, these few pages would stay in the WAL.
    #[tokio::test]
    async fn the_wal_is_checkpointed_beside_the_writer() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("chat.sqlite3");
        let store = SqliteStore::open(&path).expect("open");
        store
            .create_conversation(NewConversation {
                id: "c".into(),
                kind: ConversationKind::Group,
                name: Some("c".into()),
                creator: "alice".into(),
                members: vec!["alice".into()],
                at_ms: 1,
            })
            .await
            .expect("conversation");
        let messages = (1..=200)
            .map(|id| StoredMessage {
                message_id: id,
                conversation_id: "c".into(),
                sender_id: "alice".into(),
                content: format!("message {id}"),
                content_type: "text/plain".into(),
                client_message_id: Some(format!("m{id}")),
                timestamp_ms: id,
            })
            .collect();
        assert_eq!(store.append_many(messages).await.expect("append"), 200);

        // Until a checkpoint, appended rows live only in the WAL file; SQLite stores text
        // as is, so the last message's content shows up in the database file once copied.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let file = std::fs::read(&path).expect("read the database file");
            if file.windows(11).any(|w| w == b"message 200") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the WAL was not checkpointed into the database file"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        drop(store);
    }
}
