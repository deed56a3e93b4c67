//! [`SqliteStore`]: the embedded [`ChatStore`] — one SQLite file in WAL mode, writes through
//! the group-commit [`writer`], reads through a small [`reader`] pool, WAL checkpoints by the
//! [`checkpoint`] thread beside the writer.

mod checkpoint;
mod device;
mod mutation;
mod query;
mod reader;
mod row;
mod schema;
mod writer;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::{Connection, OpenFlags};

use crate::conversation::{Conversation, NewConversation, UserId};
use crate::cursor::{Cursor, Sequenced};
use crate::device::{PushDevice, Registered};
use crate::error::StoreError;
use crate::message::{Appended, StoredMessage};
use crate::receipt::{ReadMark, ReceiptStatus, StatusChange};
use crate::store::{ChatStore, Unready};
use checkpoint::{Checkpointer, WalPolicy};
use reader::ReadPool;
use writer::Writer;

/// The embedded chat store. Cheap to share behind an `Arc`; dropping the last handle finishes
/// the queued writes and closes the file.
#[derive(Debug)]
pub struct SqliteStore {
    writer: Writer,
    readers: Arc<ReadPool>,
    /// Held for its Drop; for a file database (the in-memory one has no WAL). Declared after
    /// the writer, so it stops after the writer has finished its queue.
    _checkpointer: Option<Checkpointer>,
}

impl SqliteStore {
    /// Opens (creating directories and file as needed) the database at `path`, applying any
    /// pending migrations. Blocking: call it before serving, or from `spawn_blocking`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(path, WalPolicy::default())
    }

    /// [`Self::open`] with the checkpoints' thresholds given (tests shrink them).
    fn open_with(path: &Path, policy: WalPolicy) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Unavailable(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let mut conn = Connection::open(path)?;
        schema::configure(&conn)?;
        schema::configure_file_writer(&conn)?;
        schema::migrate(&mut conn)?;
        let checkpointer = Checkpointer::spawn(
            {
                let conn = Connection::open(path)?;
                schema::configure(&conn)?;
                conn
            },
            std::fs::File::open(path).map_err(|e| {
                StoreError::Unavailable(format!("cannot open {}: {e}", path.display()))
            })?,
            policy,
        )?;
        let path = path.to_owned();
        let readers = ReadPool::new(Box::new(move || {
            let conn = Connection::open_with_flags(
                &path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            schema::configure(&conn)?;
            Ok(conn)
        }));
        Ok(Self {
            writer: Writer::spawn(conn, Some(checkpointer.shared()))?,
            readers,
            _checkpointer: Some(checkpointer),
        })
    }

    /// A private in-memory database (for tests): SQLite's `memdb` VFS, so the writer and the
    /// readers share it as they would a file. Nothing is durable.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let uri = format!(
            "file:/chat-store-{}-{}?vfs=memdb",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(&uri, flags)?;
        schema::configure(&conn)?;
        schema::migrate(&mut conn)?;
        let readers = ReadPool::new(Box::new(move || {
            let conn = Connection::open_with_flags(&uri, flags)?;
            schema::configure(&conn)?;
            Ok(conn)
        }));
        Ok(Self {
            writer: Writer::spawn(conn, None)?,
            readers,
            _checkpointer: None,
        })
    }
}

impl SqliteStore {
    /// Appends many messages as one job of one transaction: the way to fill a store fast
    /// (benchmarks, imports), where one job per message would pay a savepoint and a queue
    /// round trip each. All or nothing: the first error rolls the whole batch back. Returns
    /// how many were new (the rest were duplicates).
    pub async fn append_many(&self, messages: Vec<StoredMessage>) -> Result<usize, StoreError> {
        self.writer
            .write(move |conn| {
                let mut stored = 0;
                for message in messages {
                    if matches!(mutation::append(conn, message)?, Appended::Stored { .. }) {
                        stored += 1;
                    }
                }
                Ok(stored)
            })
            .await
    }
}

#[async_trait::async_trait]
impl ChatStore for SqliteStore {
    /// An empty job through the writer: its thread runs, and the file's write lock can be
    /// taken (`BEGIN IMMEDIATE`); nothing is written.
    async fn probe(&self) -> Vec<Unready> {
        match self.writer.write(|_| Ok(())).await {
            Ok(()) => Vec::new(),
            Err(e) => vec![Unready {
                part: "sqlite",
                reason: e.to_string(),
            }],
        }
    }

    async fn create_conversation(&self, new: NewConversation) -> Result<Conversation, StoreError> {
        self.writer
            .write(move |conn| mutation::create_conversation(conn, new))
            .await
    }

    async fn conversation(&self, id: &str) -> Result<Option<Conversation>, StoreError> {
        let id = id.to_owned();
        self.readers
            .read(move |conn| query::conversation(conn, &id))
            .await
    }

    async fn conversations_of(&self, user: &str) -> Result<Vec<Conversation>, StoreError> {
        let user = user.to_owned();
        self.readers
            .read(move |conn| query::conversations_of(conn, &user))
            .await
    }

    async fn update_members(
        &self,
        id: &str,
        add: &[UserId],
        remove: &[UserId],
        at_ms: u64,
    ) -> Result<Conversation, StoreError> {
        let (id, add, remove) = (id.to_owned(), add.to_vec(), remove.to_vec());
        self.writer
            .write(move |conn| mutation::update_members(conn, &id, &add, &remove, at_ms))
            .await
    }

    async fn append(&self, message: StoredMessage) -> Result<Appended, StoreError> {
        self.writer
            .write(move |conn| mutation::append(conn, message))
            .await
    }

    async fn messages_after(
        &self,
        user: &str,
        after: u64,
        limit: usize,
    ) -> Result<(Vec<StoredMessage>, bool), StoreError> {
        let user = user.to_owned();
        self.readers
            .read(move |conn| query::messages_after(conn, &user, after, limit))
            .await
    }

    async fn messages_since(
        &self,
        user: &str,
        cursor: &Cursor,
        limit: usize,
    ) -> Result<(Vec<Sequenced>, bool), StoreError> {
        let user = user.to_owned();
        let cursor = cursor.clone();
        self.readers
            .read(move |conn| query::messages_since(conn, &user, &cursor, limit))
            .await
    }

    async fn history(
        &self,
        conversation: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<(Vec<StoredMessage>, bool), StoreError> {
        let conversation = conversation.to_owned();
        self.readers
            .read(move |conn| query::history(conn, &conversation, before, limit))
            .await
    }

    async fn mark_delivered(
        &self,
        user: &str,
        message_ids: &[u64],
        at_ms: u64,
    ) -> Result<Vec<StatusChange>, StoreError> {
        let (user, ids) = (user.to_owned(), message_ids.to_vec());
        self.writer
            .write(move |conn| mutation::mark_delivered(conn, &user, &ids, at_ms))
            .await
    }

    async fn mark_read(
        &self,
        user: &str,
        conversation: &str,
        up_to: u64,
        at_ms: u64,
    ) -> Result<Option<ReadMark>, StoreError> {
        let (user, conversation) = (user.to_owned(), conversation.to_owned());
        self.writer
            .write(move |conn| mutation::mark_read(conn, &user, &conversation, up_to, at_ms))
            .await
    }

    async fn register_device(
        &self,
        device: PushDevice,
        limit: usize,
    ) -> Result<Registered, StoreError> {
        self.writer
            .write(move |conn| device::register(conn, &device, limit))
            .await
    }

    async fn unregister_device(&self, user: &str, address: &str) -> Result<bool, StoreError> {
        let (user, address) = (user.to_owned(), address.to_owned());
        self.writer
            .write(move |conn| device::unregister(conn, &user, &address))
            .await
    }

    async fn devices_of(&self, user: &str) -> Result<Vec<PushDevice>, StoreError> {
        let user = user.to_owned();
        self.readers
            .read(move |conn| device::devices_of(conn, &user))
            .await
    }

    async fn forget_device(&self, address: &str) -> Result<(), StoreError> {
        let address = address.to_owned();
        self.writer
            .write(move |conn| device::forget(conn, &address))
            .await
    }

    async fn contacts_of(&self, user: &str) -> Result<Vec<UserId>, StoreError> {
        let user = user.to_owned();
        self.readers
            .read(move |conn| query::contacts_of(conn, &user))
            .await
    }

    async fn receipts(
        &self,
        message_id: u64,
    ) -> Result<Vec<(UserId, ReceiptStatus, u64)>, StoreError> {
        self.readers
            .read(move |conn| query::receipts(conn, message_id))
            .await
    }
}
