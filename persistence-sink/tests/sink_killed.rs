//! `kill -9` of the `stompbox-sink` process in the middle of its work: after a restart in the
//! same consumer group, PostgreSQL holds every produced message exactly once, with the
//! statuses (DELIVERED, READ) the records say, and `sink_progress` passes every acknowledged
//! offset. A SIGTERM then ends the sink with exit status 0.

mod common;

use std::time::{Duration, Instant};

use common::sink_process::{SinkProcess, url_in_schema};
use common::workload::{Chat, PER_CONVERSATION, produce, stored};

/// Bound on the restarted sink catching up: seconds on an idle machine, much longer on one
/// shared with other builds.
const CATCH_UP: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread")]
async fn a_sink_killed_mid_batch_loses_and_doubles_nothing() -> anyhow::Result<()> {
    let Some(brokers) = common::kafka_brokers("sink kill -9") else {
        return Ok(());
    };
    let Some(url) = common::postgres_url("sink kill -9") else {
        return Ok(());
    };
    let Some(fixture) = common::schema_store("sink kill -9").await else {
        return Ok(());
    };
    let kafka = common::fresh_topics(brokers, "killed", 4).await;
    let chat = Chat::new(200);
    chat.create(&*fixture).await;
    let acked = produce(&kafka, &chat.events(0, PER_CONVERSATION)).await?;
    let expected = chat.expected();
    assert_eq!(expected.messages, 20_000);

    let dir = tempfile::tempdir()?;
    let log = dir.path().join("sink.log");
    let sink_url = url_in_schema(&url, &fixture.schema);
    let group = common::unique("killed-group");
    // Small batches on one connection: the kill lands between many commits. The restarted
    // sink joins the group once the killed one's session expired (the broker's minimum).
    let flags = [
        "--batch-size",
        "500",
        "--connections",
        "2",
        "--session-timeout",
        "6s",
    ];
    let client = fixture.store.client().await?;

    let mut sink = SinkProcess::start(&kafka, &sink_url, &group, &log, &flags)?;
    let deadline = Instant::now() + CATCH_UP;
    let rows_at_kill = loop {
        let (now, _) = stored(&client).await?;
        if now.messages >= expected.messages / 4 || Instant::now() > deadline {
            sink.kill_9()?;
            break stored(&client).await?.0.messages;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    assert!(
        rows_at_kill > 0 && rows_at_kill < expected.messages,
        "the kill must land mid-way: {rows_at_kill} of {} rows\n{}",
        expected.messages,
        sink.log()
    );

    let mut sink = SinkProcess::start(&kafka, &sink_url, &group, &log, &flags)?;
    let deadline = Instant::now() + CATCH_UP;
    loop {
        let progress = fixture.store.sink_progress(&kafka.events_topic).await?;
        let done = acked
            .iter()
            .all(|(p, next)| progress.get(p).is_some_and(|done| done >= next));
        if done {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "sink did not catch up: progress {progress:?}, acked {acked:?}\n{}",
            sink.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Progress is written with the rows: once it passes every acked offset, all is there.
    let (after, distinct) = stored(&client).await?;
    assert_eq!(after, expected, "{}", sink.log());
    assert_eq!(distinct, expected.messages);

    sink.stop_gracefully()?;
    Ok(())
}
