//! `--log-format json`: every log line is one JSON object, and a closed session's line
//! carries its session id, principal and close reason as fields.

use std::time::{Duration, Instant};

use conformance_tests::{Broker, WAIT};
use serde_json::Value;

#[tokio::test]
async fn json_log_lines_parse_and_carry_the_session_fields() {
    let broker = Broker::start(&["--log-format", "json"]);
    let client = broker.client("alice").await;
    client.disconnect().await;

    let deadline = Instant::now() + WAIT;
    let closed = loop {
        let lines: Vec<Value> = broker
            .log()
            .lines()
            .map(|line| {
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
            })
            .collect();
        assert!(!lines.is_empty());
        if let Some(line) = lines
            .into_iter()
            .find(|l| l["fields"]["message"] == "session closed")
        {
            break line;
        }
        assert!(
            Instant::now() < deadline,
            "no session-closed line:\n{}",
            broker.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let fields = &closed["fields"];
    assert_eq!(fields["principal"], "alice", "{closed}");
    assert_eq!(fields["reason"], "client disconnect", "{closed}");
    assert_eq!(fields["transport"], "tcp", "{closed}");
    assert_eq!(
        fields["session"].as_str().map(str::len),
        Some(16),
        "{closed}"
    );
    assert_eq!(closed["level"], "INFO");
}

#[tokio::test]
async fn text_is_the_default_log_format() {
    let broker = Broker::start(&[]);
    broker.client("alice").await.disconnect().await;
    let log = broker.log();
    assert!(!log.trim_start().starts_with('{'), "{log}");
}
