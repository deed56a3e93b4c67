//! The backend-independent contract checks (`chat_store::conformance`) on the SQLite store, so
//! the list other backends run is proven against the reference implementation.

use chat_store::SqliteStore;
use tempfile::TempDir;

/// A store on a fresh file, with the temp dir it lives in.
struct Fixture {
    store: SqliteStore,
    _dir: TempDir,
}

impl std::ops::Deref for Fixture {
    type Target = dyn chat_store::ChatStore;

    fn deref(&self) -> &Self::Target {
        &self.store
    }
}

async fn fresh() -> Option<Fixture> {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&dir.path().join("chat.sqlite3")).expect("open store");
    Some(Fixture { store, _dir: dir })
}

chat_store::conformance_tests!(fresh);
