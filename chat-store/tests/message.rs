//! Appending messages (idempotent per sender and client id) and reading them back: the sync
//! feed across a user's conversations and one conversation's history, paged both ways.

mod common;

use chat_store::{Appended, ChatStore, StoreError};
use common::{direct, file_store, group, ids, message, strings};

#[tokio::test]
async fn retry_with_the_same_client_message_id_returns_the_original() -> anyhow::Result<()> {
    let (_dir, store) = file_store();
    group(&store, "g", "alice", &["alice", "bob"]).await;
    let mut first = message(100, "g", "alice");
    first.client_message_id = Some("c-1".into());
    assert_eq!(store.append(first.clone()).await?, Appended::Stored);

    let mut retry = message(101, "g", "alice");
    retry.client_message_id = Some("c-1".into());
    retry.content = "typed again".into();
    assert_eq!(
        store.append(retry).await?,
        Appended::Duplicate {
            original: first.clone()
        }
    );
    // The same client id from another sender is another message.
    let mut other = message(102, "g", "bob");
    other.client_message_id = Some("c-1".into());
    assert_eq!(store.append(other).await?, Appended::Stored);

    let (all, more) = store.history("g", None, 10).await?;
    assert_eq!(ids(&all), vec![100, 102]);
    assert!(!more);
    assert_eq!(all[0], first);
    Ok(())
}

#[tokio::test]
async fn messages_without_client_id_are_never_deduplicated_by_content() -> anyhow::Result<()> {
    let (_dir, store) = file_store();
    group(&store, "g", "alice", &["alice"]).await;
    let a = message(1, "g", "alice");
    let mut b = message(2, "g", "alice");
    b.content = a.content.clone();
    assert_eq!(store.append(a.clone()).await?, Appended::Stored);
    assert_eq!(store.append(b).await?, Appended::Stored);
    // Exactly the same message again is a duplicate; another one under a used id is refused.
    assert_eq!(
        store.append(a.clone()).await?,
        Appended::Duplicate { original: a }
    );
    let mut clash = message(1, "g", "alice");
    clash.content = "different".into();
    let err = store.append(clash).await.expect_err("id already used");
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    Ok(())
}

#[tokio::test]
async fn append_to_unknown_conversation_or_by_non_member_is_refused() -> anyhow::Result<()> {
    let (_dir, store) = file_store();
    group(&store, "g", "alice", &["alice"]).await;
    let err = store
        .append(message(1, "nope", "alice"))
        .await
        .expect_err("unknown conversation");
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    let err = store
        .append(message(2, "g", "mallory"))
        .await
        .expect_err("not a member");
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    assert!(store.history("g", None, 10).await?.0.is_empty());
    Ok(())
}

#[tokio::test]
async fn messages_after_spans_conversations_in_id_order_with_limit_and_more() -> anyhow::Result<()>
{
    let (_dir, store) = file_store();
    let pair = direct(&store, "alice", "bob").await;
    group(&store, "g", "carol", &["carol", "alice"]).await;
    group(&store, "private", "bob", &["bob", "dave"]).await;
    store.append(message(1, &pair.id, "alice")).await?;
    store.append(message(2, "g", "carol")).await?;
    store.append(message(3, "private", "bob")).await?;
    store.append(message(4, &pair.id, "bob")).await?;
    store.append(message(5, "g", "alice")).await?;
    store.append(message(6, "private", "dave")).await?;

    let (page, more) = store.messages_after("alice", 0, 3).await?;
    assert_eq!(ids(&page), vec![1, 2, 4]);
    assert!(more);
    let (page, more) = store.messages_after("alice", 4, 3).await?;
    assert_eq!(ids(&page), vec![5]);
    assert!(!more);
    let (page, more) = store.messages_after("alice", 5, 3).await?;
    assert!(page.is_empty());
    assert!(!more);
    // Exactly `limit` left: no more.
    let (page, more) = store.messages_after("alice", 1, 3).await?;
    assert_eq!(ids(&page), vec![2, 4, 5]);
    assert!(!more);
    Ok(())
}

#[tokio::test]
async fn messages_after_excludes_conversations_the_user_is_not_in() -> anyhow::Result<()> {
    let (_dir, store) = file_store();
    group(&store, "g", "alice", &["alice", "bob"]).await;
    group(&store, "secret", "carol", &["carol"]).await;
    store.append(message(1, "g", "alice")).await?;
    store.append(message(2, "secret", "carol")).await?;
    assert_eq!(ids(&store.messages_after("bob", 0, 10).await?.0), vec![1]);
    assert!(store.messages_after("mallory", 0, 10).await?.0.is_empty());
    // Removed members stop seeing the conversation.
    store
        .update_members("g", &[], &strings(&["bob"]), 2)
        .await?;
    assert!(store.messages_after("bob", 0, 10).await?.0.is_empty());
    Ok(())
}

#[tokio::test]
async fn history_pages_backwards_ascending_with_has_more() -> anyhow::Result<()> {
    let (_dir, store) = file_store();
    group(&store, "g", "alice", &["alice", "bob"]).await;
    group(&store, "other", "alice", &["alice"]).await;
    for id in 1..=7 {
        let sender = if id % 2 == 0 { "bob" } else { "alice" };
        store.append(message(id * 10, "g", sender)).await?;
        store.append(message(id * 10 + 1, "other", "alice")).await?;
    }
    let (page, more) = store.history("g", None, 3).await?;
    assert_eq!(ids(&page), vec![50, 60, 70]);
    assert!(more);
    let (page, more) = store.history("g", Some(50), 3).await?;
    assert_eq!(ids(&page), vec![20, 30, 40]);
    assert!(more);
    let (page, more) = store.history("g", Some(20), 3).await?;
    assert_eq!(ids(&page), vec![10]);
    assert!(!more);
    let (page, more) = store.history("g", None, 7).await?;
    assert_eq!(page.len(), 7);
    assert!(!more);
    let err = store.history("nope", None, 3).await.expect_err("unknown");
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    Ok(())
}
