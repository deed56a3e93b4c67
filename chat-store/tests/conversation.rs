//! SQLite-specific conversation behaviour. The backend-independent checks (DIRECT ids, groups,
//! members, contacts) run from `tests/conformance.rs` via `chat_store::conformance`.

mod common;

use chat_store::ChatStore;
use common::group;

#[tokio::test]
async fn in_memory_store_behaves_like_a_file() -> anyhow::Result<()> {
    let store = chat_store::SqliteStore::open_in_memory()?;
    let room = group(&store, "g1", "alice", &["alice", "bob"]).await;
    assert_eq!(store.conversation("g1").await?, Some(room));
    let other = chat_store::SqliteStore::open_in_memory()?;
    assert_eq!(other.conversation("g1").await?, None);
    Ok(())
}
