//! Behavioural checks every [`ChatStore`] must pass, whatever its backend: the contract of
//! `store.rs` as executable examples. `SqliteStore` runs them in `tests/conformance.rs`; another
//! implementation (the PostgreSQL store of `persistence-sink`) runs the same list with
//! [`conformance_tests!`](crate::conformance_tests), one `#[tokio::test]` per check, each on a
//! fresh, empty store.
//!
//! A check panics (assertions) or returns the store error that broke it. Ids and timestamps are
//! small literals, so a store must accept any timestamp, not only recent ones.

#![allow(clippy::unwrap_used)]

mod devices;
mod sync;

pub use devices::*;
pub use sync::*;

use crate::{
    Appended, ChatStore, Conversation, ConversationKind, NewConversation, ReceiptStatus, Role,
    StatusChange, StoreError, StoredMessage, direct_id,
};

/// Expands to one `#[tokio::test]` per check. `$make` is an async fn returning
/// `Option<fixture>` where the fixture derefs to the store (`None` skips the check: a backend
/// that is not available outside its test harness says so itself).
#[macro_export]
macro_rules! conformance_tests {
    ($make:path) => {
        $crate::conformance_tests!(@each $make;
            direct_id_is_the_same_for_both_orders_and_create_is_get_or_create,
            direct_ids_stay_distinct_when_user_names_contain_colons,
            direct_with_a_wrong_id_or_member_count_is_invalid,
            group_creator_is_admin_and_a_taken_id_is_refused,
            creator_missing_from_members_is_invalid,
            update_members_adds_as_member_and_removes,
            update_members_of_unknown_or_direct_conversation_is_refused,
            contacts_are_the_users_sharing_any_conversation,
            retry_with_the_same_client_message_id_returns_the_original,
            messages_without_client_id_are_never_deduplicated_by_content,
            append_to_unknown_conversation_or_by_non_member_is_refused,
            messages_after_spans_conversations_in_id_order_with_limit_and_more,
            messages_after_excludes_conversations_the_user_is_not_in,
            history_pages_backwards_ascending_with_has_more,
            delivered_moves_once_and_only_for_recipients_who_are_members,
            delivered_never_moves_a_read_message_backwards,
            read_watermark_moves_only_forward_and_names_the_senders,
            read_implies_delivered,
            mark_read_of_unknown_conversation_or_by_non_member_is_refused,
            group_message_has_a_receipt_per_member_but_the_sender,
            positions_follow_the_order_messages_were_stored_not_their_ids,
            a_cursor_continues_each_conversation_with_limit_and_more,
            a_conversation_the_cursor_does_not_name_starts_after_its_message_id,
            a_retry_or_a_refused_message_takes_no_position,
            devices_are_kept_per_user_oldest_first_and_refreshed_by_address,
            a_device_registered_by_another_user_moves_to_them,
            the_device_limit_refuses_new_devices_but_not_refreshes,
            unregister_and_forget_remove_devices
        );
    };
    (@each $make:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let Some(fixture) = $make().await else {
                    return;
                };
                $crate::conformance::$name(&*fixture)
                    .await
                    .expect(stringify!($name));
            }
        )*
    };
}

pub fn strings(users: &[&str]) -> Vec<String> {
    users.iter().map(|u| u.to_string()).collect()
}

pub async fn group(
    store: &dyn ChatStore,
    id: &str,
    creator: &str,
    members: &[&str],
) -> Conversation {
    store
        .create_conversation(NewConversation {
            id: id.into(),
            kind: ConversationKind::Group,
            name: Some(format!("{id} room")),
            creator: creator.into(),
            members: strings(members),
            at_ms: 1_000,
        })
        .await
        .expect("create group")
}

pub async fn direct(store: &dyn ChatStore, a: &str, b: &str) -> Conversation {
    store
        .create_conversation(NewConversation {
            id: direct_id(a, b),
            kind: ConversationKind::Direct,
            name: None,
            creator: a.into(),
            members: strings(&[a, b]),
            at_ms: 1_000,
        })
        .await
        .expect("create direct")
}

pub fn message(id: u64, conversation: &str, sender: &str) -> StoredMessage {
    StoredMessage {
        message_id: id,
        conversation_id: conversation.into(),
        sender_id: sender.into(),
        content: format!("message {id}"),
        content_type: "text/plain".into(),
        client_message_id: None,
        timestamp_ms: 10_000 + id,
    }
}

pub fn ids(messages: &[StoredMessage]) -> Vec<u64> {
    messages.iter().map(|m| m.message_id).collect()
}

// ---- conversation ----

pub async fn direct_id_is_the_same_for_both_orders_and_create_is_get_or_create(
    store: &dyn ChatStore,
) -> Result<(), StoreError> {
    let first = direct(store, "alice", "bob").await;
    let again = direct(store, "bob", "alice").await;
    assert_eq!(first, again);
    assert_eq!(first.id, direct_id("bob", "alice"));
    assert_eq!(first.kind, ConversationKind::Direct);
    assert_eq!(first.members.len(), 2);
    assert_eq!(store.conversations_of("alice").await?, vec![first.clone()]);
    assert_eq!(store.conversations_of("bob").await?, vec![first]);
    Ok(())
}

pub async fn direct_ids_stay_distinct_when_user_names_contain_colons(
    store: &dyn ChatStore,
) -> Result<(), StoreError> {
    let one = direct(store, "a:b", "c").await;
    let other = direct(store, "a", "b:c").await;
    assert_ne!(one.id, other.id);
    assert_eq!(store.conversations_of("a:b").await?.len(), 1);
    Ok(())
}

pub async fn direct_with_a_wrong_id_or_member_count_is_invalid(
    store: &dyn ChatStore,
) -> Result<(), StoreError> {
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

pub async fn group_creator_is_admin_and_a_taken_id_is_refused(
    store: &dyn ChatStore,
) -> Result<(), StoreError> {
    let room = group(store, "g1", "alice", &["alice", "bob", "carol"]).await;
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

pub async fn creator_missing_from_members_is_invalid(
    store: &dyn ChatStore,
) -> Result<(), StoreError> {
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

pub async fn update_members_adds_as_member_and_removes(
    store: &dyn ChatStore,
) -> Result<(), StoreError> {
    group(store, "g1", "alice", &["alice", "bob"]).await;
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

pub async fn update_members_of_unknown_or_direct_conversation_is_refused(
    store: &dyn ChatStore,
) -> Result<(), StoreError> {
    let err = store
        .update_members("nope", &strings(&["x"]), &[], 1)
        .await
        .expect_err("must be refused");
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    let pair = direct(store, "alice", "bob").await;
    let err = store
        .update_members(&pair.id, &strings(&["x"]), &[], 1)
        .await
        .expect_err("must be refused");
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    Ok(())
}

pub async fn contacts_are_the_users_sharing_any_conversation(
    store: &dyn ChatStore,
) -> Result<(), StoreError> {
    direct(store, "alice", "bob").await;
    group(store, "g1", "alice", &["alice", "bob", "carol"]).await;
    group(store, "g2", "dave", &["dave", "erin"]).await;
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

// ---- message ----

pub async fn retry_with_the_same_client_message_id_returns_the_original(
    store: &dyn ChatStore,
) -> Result<(), StoreError> {
    group(store, "g", "alice", &["alice", "bob"]).await;
    let mut first = message(100, "g", "alice");
    first.client_message_id = Some("c-1".into());
    assert!(matches!(
        store.append(first.clone()).await?,
        Appended::Stored { .. }
    ));

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
    assert!(matches!(
        store.append(other).await?,
        Appended::Stored { .. }
    ));

    let (all, more) = store.history("g", None, 10).await?;
    assert_eq!(ids(&all), vec![100, 102]);
    assert!(!more);
    assert_eq!(all[0], first);
    Ok(())
}

pub async fn messages_without_client_id_are_never_deduplicated_by_content(
    store: &dyn ChatStore,
) -> Result<(), StoreError> {
    group(store, "g", "alice", &["alice"]).await;
    let a = message(1, "g", "alice");
    let mut b = message(2, "g", "alice");
    b.content = a.content.clone();
    assert!(matches!(
        store.append(a.clone()).await?,
        Appended::Stored { .. }
    ));
    assert!(matches!(store.append(b).await?, Appended::Stored { .. }));
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

pub async fn append_to_unknown_conversation_or_by_non_member_is_refused(
    store: &dyn ChatStore,
) -> Result<(), StoreError> {
    group(store, "g", "alice", &["alice"]).await;
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

/// Alice's two conversations (direct with bob, `g` with carol) and one she is not in
/// (`private`), with messages 1–6 interleaved: 1 and 4 in the pair, 2 and 5 in `g`, 3 and 6 in
/// `private`. Returns the pair.
pub async fn interleaved(store: &dyn ChatStore) -> Result<Conversation, StoreError> {
    let pair = direct(store, "alice", "bob").await;
    group(store, "g", "carol", &["carol", "alice"]).await;
    group(store, "private", "bob", &["bob", "dave"]).await;
    store.append(message(1, &pair.id, "alice")).await?;
    store.append(message(2, "g", "carol")).await?;
    store.append(message(3, "private", "bob")).await?;
    store.append(message(4, &pair.id, "bob")).await?;
    store.append(message(5, "g", "alice")).await?;
    store.append(message(6, "private", "dave")).await?;
    Ok(pair)
}

pub async fn messages_after_spans_conversations_in_id_order_with_limit_and_more(
    store: &dyn ChatStore,
) -> Result<(), StoreError> {
    interleaved(store).await?;

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

pub async fn messages_after_excludes_conversations_the_user_is_not_in(
    store: &dyn ChatStore,
) -> Result<(), StoreError> {
    group(store, "g", "alice", &["alice", "bob"]).await;
    group(store, "secret", "carol", &["carol"]).await;
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

pub async fn history_pages_backwards_ascending_with_has_more(
    store: &dyn ChatStore,
) -> Result<(), StoreError> {
    group(store, "g", "alice", &["alice", "bob"]).await;
    group(store, "other", "alice", &["alice"]).await;
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

// ---- receipt ----

pub async fn delivered_moves_once_and_only_for_recipients_who_are_members(
    store: &dyn ChatStore,
) -> Result<(), StoreError> {
    let pair = direct(store, "alice", "bob").await;
    group(store, "g", "carol", &["carol"]).await;
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

pub async fn delivered_never_moves_a_read_message_backwards(
    store: &dyn ChatStore,
) -> Result<(), StoreError> {
    let pair = direct(store, "alice", "bob").await;
    store.append(message(1, &pair.id, "alice")).await?;
    store.mark_read("bob", &pair.id, 1, 700).await?;
    assert!(store.mark_delivered("bob", &[1], 800).await?.is_empty());
    assert_eq!(
        store.receipts(1).await?,
        vec![("bob".to_string(), ReceiptStatus::Read, 700)]
    );
    Ok(())
}

pub async fn read_watermark_moves_only_forward_and_names_the_senders(
    store: &dyn ChatStore,
) -> Result<(), StoreError> {
    group(store, "g", "alice", &["alice", "bob", "carol"]).await;
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

pub async fn read_implies_delivered(store: &dyn ChatStore) -> Result<(), StoreError> {
    let pair = direct(store, "alice", "bob").await;
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

pub async fn mark_read_of_unknown_conversation_or_by_non_member_is_refused(
    store: &dyn ChatStore,
) -> Result<(), StoreError> {
    group(store, "g", "alice", &["alice"]).await;
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

pub async fn group_message_has_a_receipt_per_member_but_the_sender(
    store: &dyn ChatStore,
) -> Result<(), StoreError> {
    group(store, "g", "alice", &["alice", "bob", "carol", "dave"]).await;
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
