//! What `append` returning Ok promises: the message is on disk. Proved by dropping and
//! reopening the store after a concurrent burst, and by `kill -9` of a process mid-stream.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chat_store::{Appended, ChatStore, SqliteStore};
use common::{group, ids, message};

/// Set in the child process of the kill test: the database it appends to.
const CHILD_DB: &str = "CHAT_STORE_KILL_CHILD_DB";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_all_survive_drop_and_reopen_in_id_order() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("chat.sqlite3");
    let store = Arc::new(SqliteStore::open(&path)?);
    group(&*store, "g", "alice", &["alice", "bob"]).await;
    let next_id = Arc::new(AtomicU64::new(1));
    let mut tasks = Vec::new();
    for task in 0..50 {
        let (store, next_id) = (Arc::clone(&store), Arc::clone(&next_id));
        tasks.push(tokio::spawn(async move {
            let sender = if task % 2 == 0 { "alice" } else { "bob" };
            for _ in 0..20 {
                let id = next_id.fetch_add(1, Ordering::SeqCst);
                let appended = store.append(message(id, "g", sender)).await?;
                anyhow::ensure!(
                    matches!(appended, Appended::Stored { .. }),
                    "{id} not stored"
                );
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    drop(store);

    let store = SqliteStore::open(&path)?;
    let (all, more) = store.messages_after("alice", 0, 5_000).await?;
    assert!(!more);
    assert_eq!(ids(&all), (1..=1_000).collect::<Vec<_>>());
    let (page, more) = store.history("g", None, 100).await?;
    assert_eq!(ids(&page), (901..=1_000).collect::<Vec<_>>());
    assert!(more);
    Ok(())
}

/// Not a test of its own: the body of the child process of the kill test (a no-op otherwise).
/// Appends from 16 tasks until killed, printing `acked <id>` only after `append` returned Ok.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_child_appends_until_killed() -> anyhow::Result<()> {
    let Some(path) = std::env::var_os(CHILD_DB) else {
        return Ok(());
    };
    let store = Arc::new(SqliteStore::open(std::path::Path::new(&path))?);
    group(&*store, "g", "writer", &["writer"]).await;
    let next_id = Arc::new(AtomicU64::new(1));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (store, next_id) = (Arc::clone(&store), Arc::clone(&next_id));
        tasks.push(tokio::spawn(async move {
            loop {
                let id = next_id.fetch_add(1, Ordering::SeqCst);
                if id > 1_000_000 {
                    return anyhow::Ok(());
                }
                store.append(message(id, "g", "writer")).await?;
                let mut out = std::io::stdout().lock();
                writeln!(out, "acked {id}")?;
                out.flush()?;
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}

#[tokio::test]
async fn appends_acknowledged_before_kill_9_survive() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("chat.sqlite3");
    let mut child = Command::new(std::env::current_exe()?)
        .args([
            "--exact",
            "kill_9_child_appends_until_killed",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DB, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut acked = Vec::new();
    // Let a few thousand commits happen, then SIGKILL with appends in flight.
    while acked.len() < 2_000 {
        let Some(line) = lines.next() else { break };
        if let Some(id) = line?.strip_prefix("acked ") {
            acked.push(id.parse::<u64>()?);
        }
    }
    child.kill()?;
    // Lines already in the pipe were acknowledged before the kill: they count too.
    for line in lines {
        if let Some(id) = line?.strip_prefix("acked ") {
            acked.push(id.parse::<u64>()?);
        }
    }
    child.wait()?;
    assert!(
        acked.len() >= 2_000,
        "the child acknowledged only {}",
        acked.len()
    );

    let store = SqliteStore::open(&path)?;
    let (stored, _) = store.messages_after("writer", 0, usize::MAX).await?;
    let stored: std::collections::HashSet<u64> = ids(&stored).into_iter().collect();
    let lost: Vec<u64> = acked
        .iter()
        .copied()
        .filter(|id| !stored.contains(id))
        .collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    Ok(())
}
