//! The sink's batch apply against the real PostgreSQL: a replayed batch (a crash between the
//! database commit and the offset commit) changes nothing, statuses never move backwards, and
//! a record that can never apply fails permanently instead of looking transient.

mod common;

use chat_store::ReceiptStatus;
use chat_store::conformance::{group, ids, message};
use chat_store::postgres::apply::{Applied, apply_batch};
use chat_store::record::Event;

fn batch() -> Vec<Event> {
    let mut events: Vec<Event> = (1..=5)
        .map(|id| Event::Message(message(id, "g", "alice")))
        .collect();
    events.push(Event::Delivered {
        conversation_id: "g".into(),
        user_id: "bob".into(),
        message_ids: vec![1, 2],
        at_ms: 20_000,
    });
    events.push(Event::Read {
        conversation_id: "g".into(),
        user_id: "bob".into(),
        up_to: 3,
        at_ms: 30_000,
    });
    events
}

#[tokio::test]
async fn a_replayed_batch_is_absorbed_without_duplicate_rows() -> anyhow::Result<()> {
    let Some(fixture) = common::schema_store("sink replay").await else {
        return Ok(());
    };
    group(&*fixture, "g", "alice", &["alice", "bob"]).await;
    let mut client = fixture.store.client().await?;
    let first = apply_batch(&mut client, &batch()).await?;
    assert_eq!(
        first,
        Applied {
            messages_inserted: 5,
            messages_skipped: 0,
            delivered: 2,
            read_marks: 1
        }
    );
    let replay = apply_batch(&mut client, &batch()).await?;
    assert_eq!(
        replay,
        Applied {
            messages_inserted: 0,
            messages_skipped: 5,
            delivered: 0,
            read_marks: 0
        }
    );
    let rows: i64 = client
        .query_one("SELECT count(*) FROM messages", &[])
        .await?
        .get(0);
    assert_eq!(rows, 5);
    assert_eq!(
        ids(&fixture.history("g", None, 10).await?.0),
        vec![1, 2, 3, 4, 5]
    );
    assert_eq!(
        fixture.receipts(2).await?,
        vec![("bob".to_string(), ReceiptStatus::Read, 30_000)]
    );
    assert_eq!(
        fixture.receipts(4).await?,
        vec![("bob".to_string(), ReceiptStatus::Sent, 10_004)]
    );
    Ok(())
}

#[tokio::test]
async fn statuses_never_move_backwards_whatever_the_arrival_order() -> anyhow::Result<()> {
    let Some(fixture) = common::schema_store("sink monotonic").await else {
        return Ok(());
    };
    group(&*fixture, "g", "alice", &["alice", "bob"]).await;
    let mut client = fixture.store.client().await?;
    apply_batch(&mut client, &batch()).await?;
    // An older READ and a DELIVERED for an already-read message: both no-ops.
    let late = [
        Event::Read {
            conversation_id: "g".into(),
            user_id: "bob".into(),
            up_to: 2,
            at_ms: 40_000,
        },
        Event::Delivered {
            conversation_id: "g".into(),
            user_id: "bob".into(),
            message_ids: vec![3],
            at_ms: 41_000,
        },
    ];
    let applied = apply_batch(&mut client, &late).await?;
    assert_eq!(applied, Applied::default());
    assert_eq!(
        fixture.receipts(3).await?,
        vec![("bob".to_string(), ReceiptStatus::Read, 30_000)]
    );
    Ok(())
}

#[tokio::test]
async fn a_record_for_an_unknown_conversation_fails_permanently() -> anyhow::Result<()> {
    let Some(fixture) = common::schema_store("sink poison").await else {
        return Ok(());
    };
    let mut client = fixture.store.client().await?;
    let err = apply_batch(&mut client, &[Event::Message(message(1, "nope", "alice"))])
        .await
        .expect_err("no such conversation");
    assert!(!err.is_transient(), "{err:?}");
    // Nothing of the failed batch is left behind.
    let rows: i64 = client
        .query_one("SELECT count(*) FROM messages", &[])
        .await?
        .get(0);
    assert_eq!(rows, 0);
    Ok(())
}

#[tokio::test]
async fn a_large_batch_that_is_partly_a_replay_inserts_only_the_new_rows() -> anyhow::Result<()> {
    let Some(fixture) = common::schema_store("sink copy replay").await else {
        return Ok(());
    };
    group(&*fixture, "g", "alice", &["alice", "bob"]).await;
    let mut client = fixture.store.client().await?;
    let messages = |ids: std::ops::RangeInclusive<u64>| -> Vec<Event> {
        ids.map(|id| Event::Message(message(id, "g", "alice")))
            .collect()
    };
    // Large enough for the COPY path; the second batch overlaps the first by half, so its
    // COPY fails on the replayed rows and the conflict-tolerant insert takes over.
    let first = apply_batch(&mut client, &messages(1..=200)).await?;
    assert_eq!((first.messages_inserted, first.messages_skipped), (200, 0));
    let overlap = apply_batch(&mut client, &messages(101..=300)).await?;
    assert_eq!(
        (overlap.messages_inserted, overlap.messages_skipped),
        (100, 100)
    );
    let row = client
        .query_one(
            "SELECT count(*), count(DISTINCT message_id) FROM messages",
            &[],
        )
        .await?;
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (300, 300));
    Ok(())
}

/// Exact sync's positions (`chat_store::Cursor`) come from the sink in streamed mode: each
/// conversation's new rows are numbered in record (partition) order, not id order, and a
/// replayed record — by the insert or by the COPY path — keeps the position it had.
#[tokio::test]
async fn the_sink_numbers_each_conversation_in_record_order_and_a_replay_keeps_its_position()
-> anyhow::Result<()> {
    let Some(fixture) = common::schema_store("sink positions").await else {
        return Ok(());
    };
    group(&*fixture, "g", "alice", &["alice", "bob"]).await;
    group(&*fixture, "h", "alice", &["alice", "bob"]).await;
    let mut client = fixture.store.client().await?;
    // Ids out of order, as nodes with skewed clocks produce them; two conversations interleaved.
    let small: Vec<Event> = [(50, "g"), (7, "h"), (10, "g"), (30, "g"), (3, "h")]
        .into_iter()
        .map(|(id, c)| Event::Message(message(id, c, "alice")))
        .collect();
    apply_batch(&mut client, &small).await?;
    // A replay of the last two with two new ones; then a COPY-sized batch overlapping it.
    let replay: Vec<Event> = [(30, "g"), (3, "h"), (20, "g"), (1, "h")]
        .into_iter()
        .map(|(id, c)| Event::Message(message(id, c, "alice")))
        .collect();
    apply_batch(&mut client, &replay).await?;
    let large: Vec<Event> = [20, 1]
        .into_iter()
        .chain(1000..1200)
        .map(|id| Event::Message(message(id, if id == 1 { "h" } else { "g" }, "alice")))
        .collect();
    let applied = apply_batch(&mut client, &large).await?;
    assert_eq!(applied.messages_inserted, 200);
    let positions = |conversation: &'static str| {
        let client = &client;
        async move {
            client
                .query(
                    "SELECT message_id, seq FROM messages WHERE conversation_id = $1 ORDER BY seq",
                    &[&conversation],
                )
                .await
                .map(|rows| {
                    rows.iter()
                        .map(|r| (r.get::<_, i64>(0), r.get::<_, i64>(1)))
                        .collect::<Vec<_>>()
                })
        }
    };
    let g = positions("g").await?;
    assert_eq!(&g[..4], &[(50, 1), (10, 2), (30, 3), (20, 4)]);
    assert_eq!(g.len(), 204);
    assert!(
        g.iter()
            .enumerate()
            .all(|(i, (_, seq))| *seq == i as i64 + 1),
        "no gap, no repeat"
    );
    assert_eq!(positions("h").await?, vec![(7, 1), (3, 2), (1, 3)]);
    let last: i64 = client
        .query_one("SELECT last_seq FROM conversations WHERE id = 'g'", &[])
        .await?
        .get(0);
    assert_eq!(last, 204);
    Ok(())
}

/// The replay probe (`apply::drop_applied`) reads a keyless record's own month only (by its
/// `(id, time)`), a keyed one's every month. Pins what any bound on those months must keep: a
/// retry a month after its original, an original timestamped after its retry (another node's
/// clock), and a keyless replay in an old month are all dropped; a new keyless message next to
/// them goes in.
#[tokio::test]
async fn duplicates_are_found_in_earlier_months_and_across_clock_skew() -> anyhow::Result<()> {
    const DEC_2034_MS: u64 = 2_050_228_800_000;
    const JAN_2035_MS: u64 = 2_052_475_200_000;
    let Some(fixture) = common::schema_store("sink probe months").await else {
        return Ok(());
    };
    group(&*fixture, "g", "alice", &["alice", "bob"]).await;
    let mut client = fixture.store.client().await?;
    let at = |id: u64, client_id: Option<&str>, timestamp_ms: u64| {
        let mut m = message(id, "g", "alice");
        m.client_message_id = client_id.map(Into::into);
        m.timestamp_ms = timestamp_ms;
        Event::Message(m)
    };
    let first = [
        at(1, Some("c-1"), DEC_2034_MS),
        at(3, Some("c-2"), JAN_2035_MS + 1_000),
        at(5, None, DEC_2034_MS + 5),
    ];
    let applied = apply_batch(&mut client, &first).await?;
    assert_eq!(
        (applied.messages_inserted, applied.messages_skipped),
        (3, 0)
    );
    let second = [
        // A retry of c-1 under another id, a month later.
        at(2, Some("c-1"), JAN_2035_MS),
        // A retry of c-2 timestamped a second before its original.
        at(4, Some("c-2"), JAN_2035_MS),
        // A replay of the keyless 5, in December.
        at(5, None, DEC_2034_MS + 5),
        at(6, None, JAN_2035_MS + 6),
    ];
    let applied = apply_batch(&mut client, &second).await?;
    assert_eq!(
        (applied.messages_inserted, applied.messages_skipped),
        (1, 3),
        "{applied:?}"
    );
    assert_eq!(
        ids(&fixture.history("g", None, 10).await?.0),
        vec![1, 3, 5, 6]
    );
    Ok(())
}
