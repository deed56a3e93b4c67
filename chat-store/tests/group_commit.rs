//! The group commit: ops batched into one transaction still succeed or fail one by one, and
//! ops queued in order are applied in order.

mod common;

use std::sync::Arc;

use chat_store::{Appended, ChatStore, StoreError};
use common::{file_store, group, ids, message};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_op_in_a_batch_does_not_undo_the_others() -> anyhow::Result<()> {
    let (_dir, store) = file_store();
    let store = Arc::new(store);
    group(&*store, "g", "alice", &["alice"]).await;
    let mut tasks = Vec::new();
    for id in 1..=300u64 {
        let store = Arc::clone(&store);
        // Every tenth append is by a non-member: refused inside the same batches.
        let sender = if id % 10 == 0 { "mallory" } else { "alice" };
        tasks.push(tokio::spawn(async move {
            (id, store.append(message(id, "g", sender)).await)
        }));
    }
    for task in tasks {
        let (id, result) = task.await?;
        if id % 10 == 0 {
            assert!(
                matches!(result, Err(StoreError::Invalid(_))),
                "{id}: {result:?}"
            );
        } else {
            assert!(matches!(result?, Appended::Stored { .. }), "{id}");
        }
    }
    let (all, _) = store.history("g", None, 1_000).await?;
    let expected: Vec<u64> = (1..=300).filter(|id| id % 10 != 0).collect();
    assert_eq!(ids(&all), expected);
    Ok(())
}

#[tokio::test]
async fn writes_queued_in_order_apply_in_order() -> anyhow::Result<()> {
    let (_dir, store) = file_store();
    group(&store, "g", "alice", &["alice", "bob"]).await;
    // Both queued before either is answered (likely one batch): the one queued first wins.
    let mut first = message(1, "g", "bob");
    first.client_message_id = Some("same".into());
    let mut retry = message(2, "g", "bob");
    retry.client_message_id = Some("same".into());
    let (appended, duplicate) = tokio::join!(store.append(first.clone()), store.append(retry));
    assert!(matches!(appended?, Appended::Stored { .. }));
    assert_eq!(duplicate?, Appended::Duplicate { original: first });
    Ok(())
}
