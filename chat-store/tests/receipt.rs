//! Receipt state: DELIVERED moves once, READ is a forward-only watermark that implies
//! DELIVERED, and a group message has a state per member.

mod common;

use chat_store::{ChatStore, ReceiptStatus, StatusChange, StoreError};
use common::{direct, file_store, group, message, strings};

#[tokio::test]
async fn delivered_moves_once_and_only_for_recipients_who_are_members() -> anyhow::Result<()> {
    let (_dir, store) = file_store();
    let pair = direct(&store, "alice", "bob").await;
    group(&store, "g", "carol", &["carol"]).await;
    store.append(message(1, &pair.id, "alice")).await?;
    store.append(message(2, &pair.id, "bob")).await?;
    store.append(message(3, "g", "carol")).await?;

    // Own message (2), unknown id (99), a conversation bob is not in (3): ignored.
    let changes = store.mark_delivered("bob", &[1, 2, 3, 99], 500).await?;
    assert_eq!(
        changes,
        vec![StatusChange {
            message_id: 1,
            conversation_id: pair.id.clone(),
            sender_id: "alice".into(),
            user_id: "bob".into(),
            status: ReceiptStatus::Delivered,
            at_ms: 500,
        }]
    );
    assert!(store.mark_delivered("bob", &[1], 600).await?.is_empty());
    assert_eq!(
        store.receipts(1).await?,
        vec![("bob".to_string(), ReceiptStatus::Delivered, 500)]
    );
    Ok(())
}

#[tokio::test]
async fn delivered_never_moves_a_read_message_backwards() -> anyhow::Result<()> {
    let (_dir, store) = file_store();
    let pair = direct(&store, "alice", "bob").await;
    store.append(message(1, &pair.id, "alice")).await?;
    store.mark_read("bob", &pair.id, 1, 700).await?;
    assert!(store.mark_delivered("bob", &[1], 800).await?.is_empty());
    assert_eq!(
        store.receipts(1).await?,
        vec![("bob".to_string(), ReceiptStatus::Read, 700)]
    );
    Ok(())
}

#[tokio::test]
async fn read_watermark_moves_only_forward_and_names_the_senders() -> anyhow::Result<()> {
    let (_dir, store) = file_store();
    group(&store, "g", "alice", &["alice", "bob", "carol"]).await;
    store.append(message(10, "g", "alice")).await?;
    store.append(message(20, "g", "carol")).await?;
    store.append(message(30, "g", "bob")).await?;
    store.append(message(40, "g", "alice")).await?;

    let mark = store
        .mark_read("bob", "g", 30, 1_000)
        .await?
        .expect("moved");
    assert_eq!(mark.up_to, 30);
    assert_eq!(mark.senders, strings(&["alice", "carol"]));
    assert_eq!(
        (mark.conversation_id.as_str(), mark.user_id.as_str()),
        ("g", "bob")
    );
    assert_eq!(mark.at_ms, 1_000);

    assert_eq!(store.mark_read("bob", "g", 20, 1_100).await?, None);
    assert_eq!(store.mark_read("bob", "g", 30, 1_100).await?, None);

    // An id past the newest message lands on the newest; only newly read senders are named.
    let mark = store
        .mark_read("bob", "g", 1_000_000, 1_200)
        .await?
        .expect("moved");
    assert_eq!(mark.up_to, 40);
    assert_eq!(mark.senders, strings(&["alice"]));
    store.append(message(50, "g", "carol")).await?;
    assert_eq!(
        store.receipts(50).await?,
        vec![
            ("alice".to_string(), ReceiptStatus::Sent, 10_050),
            ("bob".to_string(), ReceiptStatus::Sent, 10_050),
        ]
    );
    Ok(())
}

#[tokio::test]
async fn read_implies_delivered() -> anyhow::Result<()> {
    let (_dir, store) = file_store();
    let pair = direct(&store, "alice", "bob").await;
    store.append(message(1, &pair.id, "alice")).await?;
    store.append(message(2, &pair.id, "alice")).await?;
    store.mark_delivered("bob", &[1], 100).await?;
    store.mark_read("bob", &pair.id, 2, 200).await?;
    assert_eq!(
        store.receipts(1).await?,
        vec![("bob".to_string(), ReceiptStatus::Read, 200)]
    );
    assert_eq!(
        store.receipts(2).await?,
        vec![("bob".to_string(), ReceiptStatus::Read, 200)]
    );
    assert!(store.mark_delivered("bob", &[1, 2], 300).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn mark_read_of_unknown_conversation_or_by_non_member_is_refused() -> anyhow::Result<()> {
    let (_dir, store) = file_store();
    group(&store, "g", "alice", &["alice"]).await;
    let err = store
        .mark_read("alice", "nope", 1, 1)
        .await
        .expect_err("unknown");
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    let err = store
        .mark_read("bob", "g", 1, 1)
        .await
        .expect_err("non-member");
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    assert_eq!(store.mark_read("alice", "g", 1, 1).await?, None);
    Ok(())
}

#[tokio::test]
async fn group_message_has_a_receipt_per_member_but_the_sender() -> anyhow::Result<()> {
    let (_dir, store) = file_store();
    group(&store, "g", "alice", &["alice", "bob", "carol", "dave"]).await;
    store.append(message(1, "g", "alice")).await?;
    store.mark_delivered("bob", &[1], 100).await?;
    store.mark_delivered("carol", &[1], 110).await?;
    store.mark_read("carol", "g", 1, 120).await?;
    assert_eq!(
        store.receipts(1).await?,
        vec![
            ("bob".to_string(), ReceiptStatus::Delivered, 100),
            ("carol".to_string(), ReceiptStatus::Read, 120),
            ("dave".to_string(), ReceiptStatus::Sent, 10_001),
        ]
    );
    assert!(store.receipts(999).await?.is_empty());
    Ok(())
}
