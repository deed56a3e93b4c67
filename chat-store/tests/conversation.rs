//! Conversations: DIRECT get-or-create by derived id, GROUP creation and membership changes,
//! and who shares a conversation with whom.

mod common;

use chat_store::{ChatStore, ConversationKind, NewConversation, Role, StoreError, direct_id};
use common::{direct, file_store, group, strings};

#[tokio::test]
async fn direct_id_is_the_same_for_both_orders_and_create_is_get_or_create() -> anyhow::Result<()> {
    let (_dir, store) = file_store();
    let first = direct(&store, "alice", "bob").await;
    let again = direct(&store, "bob", "alice").await;
    assert_eq!(first, again);
    assert_eq!(first.id, direct_id("bob", "alice"));
    assert_eq!(first.kind, ConversationKind::Direct);
    assert_eq!(first.members.len(), 2);
    assert_eq!(store.conversations_of("alice").await?, vec![first.clone()]);
    assert_eq!(store.conversations_of("bob").await?, vec![first]);
    Ok(())
}

#[tokio::test]
async fn direct_ids_stay_distinct_when_user_names_contain_colons() -> anyhow::Result<()> {
    let (_dir, store) = file_store();
    let one = direct(&store, "a:b", "c").await;
    let other = direct(&store, "a", "b:c").await;
    assert_ne!(one.id, other.id);
    assert_eq!(store.conversations_of("a:b").await?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn direct_with_a_wrong_id_or_member_count_is_invalid() -> anyhow::Result<()> {
    let (_dir, store) = file_store();
    let mut new = NewConversation {
        id: "d:whatever".into(),
        kind: ConversationKind::Direct,
        name: None,
        creator: "alice".into(),
        members: strings(&["alice", "bob"]),
        at_ms: 1,
    };
    let err = store
        .create_conversation(new.clone())
        .await
        .expect_err("must be refused");
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    new.id = direct_id("alice", "alice");
    new.members = strings(&["alice", "alice"]);
    let err = store
        .create_conversation(new)
        .await
        .expect_err("must be refused");
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    Ok(())
}

#[tokio::test]
async fn group_creator_is_admin_and_a_taken_id_is_refused() -> anyhow::Result<()> {
    let (_dir, store) = file_store();
    let room = group(&store, "g1", "alice", &["alice", "bob", "carol"]).await;
    assert_eq!(room.kind, ConversationKind::Group);
    assert_eq!(room.name.as_deref(), Some("g1 room"));
    assert_eq!(room.creator, "alice");
    assert!(room.is_admin("alice"));
    assert!(!room.is_admin("bob"));
    assert!(room.is_member("carol"));
    assert_eq!(store.conversation("g1").await?, Some(room));
    assert_eq!(store.conversation("nope").await?, None);

    let err = store
        .create_conversation(NewConversation {
            id: "g1".into(),
            kind: ConversationKind::Group,
            name: None,
            creator: "zed".into(),
            members: strings(&["zed"]),
            at_ms: 2,
        })
        .await
        .expect_err("must be refused");
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    Ok(())
}

#[tokio::test]
async fn creator_missing_from_members_is_invalid() -> anyhow::Result<()> {
    let (_dir, store) = file_store();
    let err = store
        .create_conversation(NewConversation {
            id: "g".into(),
            kind: ConversationKind::Group,
            name: None,
            creator: "alice".into(),
            members: strings(&["bob"]),
            at_ms: 1,
        })
        .await
        .expect_err("must be refused");
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    Ok(())
}

#[tokio::test]
async fn update_members_adds_as_member_and_removes() -> anyhow::Result<()> {
    let (_dir, store) = file_store();
    group(&store, "g1", "alice", &["alice", "bob"]).await;
    let updated = store
        .update_members(
            "g1",
            &strings(&["carol", "dave", "bob"]),
            &strings(&["bob"]),
            5_000,
        )
        .await?;
    let members: Vec<_> = updated
        .members
        .iter()
        .map(|m| (m.user_id.as_str(), m.role, m.joined_at_ms))
        .collect();
    assert_eq!(
        members,
        vec![
            ("alice", Role::Admin, 1_000),
            ("carol", Role::Member, 5_000),
            ("dave", Role::Member, 5_000)
        ]
    );
    assert!(store.conversations_of("bob").await?.is_empty());
    assert_eq!(store.conversations_of("dave").await?.len(), 1);
    assert_eq!(store.conversation("g1").await?, Some(updated));
    Ok(())
}

#[tokio::test]
async fn update_members_of_unknown_or_direct_conversation_is_refused() -> anyhow::Result<()> {
    let (_dir, store) = file_store();
    let err = store
        .update_members("nope", &strings(&["x"]), &[], 1)
        .await
        .expect_err("must be refused");
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    let pair = direct(&store, "alice", "bob").await;
    let err = store
        .update_members(&pair.id, &strings(&["x"]), &[], 1)
        .await
        .expect_err("must be refused");
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    Ok(())
}

#[tokio::test]
async fn contacts_are_the_users_sharing_any_conversation() -> anyhow::Result<()> {
    let (_dir, store) = file_store();
    direct(&store, "alice", "bob").await;
    group(&store, "g1", "alice", &["alice", "bob", "carol"]).await;
    group(&store, "g2", "dave", &["dave", "erin"]).await;
    assert_eq!(
        store.contacts_of("alice").await?,
        strings(&["bob", "carol"])
    );
    assert_eq!(
        store.contacts_of("carol").await?,
        strings(&["alice", "bob"])
    );
    assert_eq!(store.contacts_of("erin").await?, strings(&["dave"]));
    assert!(store.contacts_of("nobody").await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn in_memory_store_behaves_like_a_file() -> anyhow::Result<()> {
    let store = chat_store::SqliteStore::open_in_memory()?;
    let room = group(&store, "g1", "alice", &["alice", "bob"]).await;
    assert_eq!(store.conversation("g1").await?, Some(room));
    let other = chat_store::SqliteStore::open_in_memory()?;
    assert_eq!(other.conversation("g1").await?, None);
    Ok(())
}
