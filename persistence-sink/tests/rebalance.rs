//! A second sink joining the consumer group while the first is mid-run: the group rebalances
//! (partitions revoked from the first sink, some given to the second) and neither sink stops
//! with an error — a commit for a partition revoked mid-batch is dropped, and its records are
//! replayed idempotently by the new owner. Every message ends up stored exactly once.

mod common;

use std::time::{Duration, Instant};

use common::workload::{Chat, PER_CONVERSATION, produce, stored};
use persistence_sink::pipeline::{SinkConfig, run};
use tokio_util::sync::CancellationToken;

/// Bound on the two sinks catching up (seconds on an idle machine).
const CATCH_UP: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread")]
async fn a_rebalance_mid_run_stops_no_sink_and_loses_nothing() -> anyhow::Result<()> {
    let Some(brokers) = common::kafka_brokers("sink rebalance") else {
        return Ok(());
    };
    let Some(fixture) = common::schema_store("sink rebalance").await else {
        return Ok(());
    };
    let kafka = common::fresh_topics(brokers, "rebalance", 4).await;
    let chat = Chat::new(100);
    chat.create(&*fixture).await;
    let acked = produce(&kafka, &chat.events(0, PER_CONVERSATION)).await?;
    let config = SinkConfig {
        group_id: common::unique("rebalance-group"),
        batch_max: 200,
        connections: 1,
        session_timeout: Duration::from_secs(6),
        ..SinkConfig::default()
    };
    let client = fixture.store.client().await?;
    let (first_stop, second_stop) = (CancellationToken::new(), CancellationToken::new());
    let first = run(&kafka, &config, &fixture.store, first_stop.clone());
    let second = async {
        // Join once the first sink is busy: some rows in, most not.
        let deadline = Instant::now() + CATCH_UP;
        while stored(&client).await?.0.messages < 1_000 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let rows_at_join = stored(&client).await?.0.messages;
        let stats = run(&kafka, &config, &fixture.store, second_stop.clone()).await;
        anyhow::Ok((rows_at_join, stats))
    };
    let watch = async {
        let deadline = Instant::now() + CATCH_UP;
        let caught_up = loop {
            let progress = fixture.store.sink_progress(&kafka.events_topic).await?;
            if acked
                .iter()
                .all(|(p, next)| progress.get(p).is_some_and(|d| d >= next))
            {
                break true;
            }
            if Instant::now() > deadline {
                break false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        first_stop.cancel();
        second_stop.cancel();
        anyhow::Ok(caught_up)
    };
    let (first, second, caught_up) = tokio::join!(first, second, watch);
    let (rows_at_join, second) = second?;
    let (first, second) = (first?, second?);
    assert!(
        caught_up?,
        "not caught up: first {first:?}, second {second:?}"
    );
    assert!(
        rows_at_join < chat.expected().messages,
        "the second sink must join mid-run ({rows_at_join} rows in)"
    );
    assert!(
        first.batches > 0 && second.batches > 0,
        "both sinks applied: {first:?} {second:?}"
    );
    let (after, distinct) = stored(&client).await?;
    assert_eq!(after, chat.expected());
    assert_eq!(distinct, after.messages);
    Ok(())
}
