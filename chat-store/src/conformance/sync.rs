//! The checks of exact sync ([`ChatStore::messages_since`], `cursor.rs`): positions follow
//! the order the store took the messages in — not their ids, which come from the nodes'
//! clocks — and a cursor continues each conversation where it stopped.

use super::{group, interleaved, message};
use crate::{Appended, ChatStore, Cursor, Sequenced, StoreError};

fn seen(page: &[Sequenced]) -> Vec<(String, u64, u64)> {
    page.iter()
        .map(|m| {
            (
                m.message.conversation_id.clone(),
                m.seq,
                m.message.message_id,
            )
        })
        .collect()
}

fn at(entries: &[(&str, u64)]) -> Cursor {
    Cursor {
        positions: entries.iter().map(|(c, p)| ((*c).to_owned(), *p)).collect(),
        after_message_id: 0,
    }
}

pub async fn positions_follow_the_order_messages_were_stored_not_their_ids(
    store: &dyn ChatStore,
) -> Result<(), StoreError> {
    group(store, "g", "alice", &["alice", "bob"]).await;
    // Ids from nodes whose clocks disagree: a later message can carry a smaller id.
    for (id, position) in [(50, 1), (10, 2), (30, 3)] {
        match store.append(message(id, "g", "alice")).await? {
            // A store that places a message as it stores it says where (live copies carry it).
            Appended::Stored { seq: Some(seq) } => assert_eq!(seq, position, "{id}"),
            Appended::Stored { seq: None } => {}
            other => panic!("{id}: {other:?}"),
        }
    }
    let (page, more) = store.messages_since("bob", &Cursor::default(), 10).await?;
    assert_eq!(
        seen(&page),
        vec![
            ("g".into(), 1, 50),
            ("g".into(), 2, 10),
            ("g".into(), 3, 30)
        ]
    );
    assert!(!more);
    // After position 1: the message with the smallest id is still ahead.
    let (page, _) = store.messages_since("bob", &at(&[("g", 1)]), 10).await?;
    assert_eq!(seen(&page), vec![("g".into(), 2, 10), ("g".into(), 3, 30)]);
    Ok(())
}

pub async fn a_cursor_continues_each_conversation_with_limit_and_more(
    store: &dyn ChatStore,
) -> Result<(), StoreError> {
    let pair = interleaved(store).await?;

    let start = Cursor::default();
    let (page, more) = store.messages_since("alice", &start, 3).await?;
    assert_eq!(page.len(), 3);
    assert!(more);
    let next = start.advanced(&page);
    let (rest, more) = store.messages_since("alice", &next, 3).await?;
    assert!(!more);
    let mut all = seen(&page);
    all.extend(seen(&rest));
    all.sort();
    let mut expected = vec![
        (pair.id.clone(), 1, 1),
        (pair.id.clone(), 2, 4),
        ("g".into(), 1, 2),
        ("g".into(), 2, 5),
    ];
    expected.sort();
    assert_eq!(all, expected, "every message once, none of `private`");
    let done = next.advanced(&rest);
    assert!(store.messages_since("alice", &done, 3).await?.0.is_empty());
    // Exactly `limit` left: no more.
    let (page, more) = store.messages_since("alice", &start, 4).await?;
    assert_eq!(page.len(), 4);
    assert!(!more);
    Ok(())
}

pub async fn a_conversation_the_cursor_does_not_name_starts_after_its_message_id(
    store: &dyn ChatStore,
) -> Result<(), StoreError> {
    group(store, "g", "alice", &["alice", "bob"]).await;
    group(store, "h", "alice", &["alice", "bob"]).await;
    for (id, conversation) in [(1, "g"), (2, "h"), (3, "g"), (4, "h")] {
        store.append(message(id, conversation, "alice")).await?;
    }
    let cursor = Cursor {
        positions: [("g".to_owned(), 0)].into(),
        after_message_id: 2,
    };
    let (page, _) = store.messages_since("bob", &cursor, 10).await?;
    assert_eq!(
        seen(&page),
        vec![("g".into(), 1, 1), ("g".into(), 2, 3), ("h".into(), 2, 4)]
    );
    Ok(())
}

pub async fn a_retry_or_a_refused_message_takes_no_position(
    store: &dyn ChatStore,
) -> Result<(), StoreError> {
    group(store, "g", "alice", &["alice", "bob"]).await;
    let mut first = message(1, "g", "alice");
    first.client_message_id = Some("c-1".into());
    store.append(first.clone()).await?;
    let mut retry = message(2, "g", "alice");
    retry.client_message_id = Some("c-1".into());
    assert!(matches!(
        store.append(retry).await?,
        Appended::Duplicate { .. }
    ));
    assert!(store.append(message(3, "g", "mallory")).await.is_err());
    store.append(message(4, "g", "bob")).await?;
    let (page, _) = store
        .messages_since("alice", &Cursor::default(), 10)
        .await?;
    assert_eq!(seen(&page), vec![("g".into(), 1, 1), ("g".into(), 2, 4)]);
    assert!(
        store
            .messages_since("mallory", &Cursor::default(), 10)
            .await?
            .0
            .is_empty(),
        "only the user's conversations"
    );
    Ok(())
}
