//! Shared fixtures for the SQLite-only tests: a store on a real file in a temp dir. The terse
//! constructors are the backend-independent ones every store's checks use.

#![allow(dead_code, unused_imports)]

use chat_store::SqliteStore;
pub use chat_store::conformance::{group, ids, message};
use tempfile::TempDir;

/// A store on a fresh file; keep the `TempDir` alive as long as the store.
pub fn file_store() -> (TempDir, SqliteStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&dir.path().join("db/chat.sqlite3")).expect("open store");
    (dir, store)
}
