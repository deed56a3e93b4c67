//! What the command line refuses, and what it derives: storage and cluster choices, public
//! listeners without authentication, bad files and values.

use std::time::Duration;

use super::*;

#[test]
fn storage_flags_choose_the_store_and_kafka_needs_postgres() {
    let c = config(&[]);
    assert!(c.storage.postgres_url.is_none() && c.storage.kafka.is_none());
    let c = config(&[
        "--postgres-url",
        "postgres://u@h/db",
        "--kafka-brokers",
        "k:9092",
        "--kafka-topic",
        "t",
        "--kafka-max-pending",
        "7",
        "--kafka-timeout",
        "2s",
    ]);
    assert_eq!(c.storage.postgres_url.as_deref(), Some("postgres://u@h/db"));
    let settings = c.storage.kafka.expect("kafka settings");
    let kafka = &settings.kafka;
    assert_eq!(kafka.brokers, "k:9092");
    assert_eq!(
        (
            kafka.events_topic.as_str(),
            kafka.dead_letter_topic.as_str()
        ),
        ("t", "t.dlt")
    );
    assert_eq!(settings.max_pending, 7);
    assert_eq!(kafka.delivery_timeout, Duration::from_secs(2));
    assert_eq!(kafka.partitions, 12);
    let err = run(&["--kafka-brokers", "k:9092"]).expect_err("kafka alone");
    assert!(err.to_string().contains("postgres_url"), "{err}");
}

#[test]
fn redis_url_enables_cluster_mode_and_a_missing_node_id_is_claimed() {
    let c = config(&[]);
    assert!(c.cluster.is_none(), "single node by default");
    let c = config(&["--redis-url", "redis://127.0.0.1:6379/"]);
    let cluster = c.cluster.expect("cluster mode");
    assert_eq!(cluster.redis_url, "redis://127.0.0.1:6379/");
    assert!(cluster.claim_node_id);
    let c = config(&["--redis-url", "redis://r/", "--node-id", "0"]);
    assert!(
        !c.cluster.expect("cluster mode").claim_node_id,
        "0 is a chosen id too"
    );
    assert!(matches!(
        run(&["--node-id", "1024"]),
        Err(CliError::Config(ConfigError::Invalid {
            key: "node_id",
            ..
        }))
    ));
}

#[test]
fn public_listener_without_auth_is_refused_with_advice() {
    for args in [
        ["--stomp-listen", "0.0.0.0:61613"],
        ["--http-listen", "[::]:15674"],
        ["--stomp-listen", "192.0.2.1:61613"],
    ] {
        let err = run(&args).expect_err("refused");
        assert!(
            matches!(err, CliError::Config(ConfigError::Unauthenticated { .. })),
            "{err}"
        );
        let message = err.to_string();
        for advice in [
            "--users-file",
            "--jwt-secret",
            "--allow-anonymous",
            "127.0.0.1",
        ] {
            assert!(message.contains(advice), "{message}");
        }
    }
}

#[test]
fn public_listener_is_allowed_with_auth_or_allow_anonymous() {
    let public = [
        "--stomp-listen",
        "0.0.0.0:61613",
        "--http-listen",
        "0.0.0.0:15674",
    ];
    for extra in [
        "--allow-anonymous",
        "--jwt-secret=x",
        "--users-file=users.toml",
        "--jwt-public-key=key.pem",
    ] {
        let mut args = public.to_vec();
        args.push(extra);
        assert!(
            run(&args).is_ok(),
            "{extra} should permit a public listener"
        );
    }
}

#[test]
fn loopback_listeners_need_no_auth() {
    assert!(run(&["--stomp-listen", "127.0.0.2:0", "--http-listen", "[::1]:0"]).is_ok());
    assert!(run(&["--stomp-listen", "[::ffff:127.0.0.1]:0"]).is_ok());
}

#[test]
fn bad_files_are_reported_with_their_path() {
    let dir = TempDir::new("bad-files");
    let typo = dir.file("typo.toml", "max_bdoy = 5\n");
    let err = run(&["--config", typo.to_str().expect("utf-8")]).expect_err("typo");
    assert!(
        matches!(err, CliError::Config(ConfigError::ParseFile { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("max_bdoy"), "{err}");

    let wrong_type = dir.file("type.toml", "node_id = \"seven\"\n");
    assert!(run(&["--config", wrong_type.to_str().expect("utf-8")]).is_err());

    let missing = dir.0.join("missing.toml");
    let err = run(&["--config", missing.to_str().expect("utf-8")]).expect_err("missing");
    assert!(
        matches!(err, CliError::Config(ConfigError::ReadFile { .. })),
        "{err}"
    );
}

#[test]
fn bad_values_are_refused() {
    assert!(matches!(
        run(&["--heartbeat-grace", "0.5"]),
        Err(CliError::Config(ConfigError::Invalid {
            key: "heartbeat_grace",
            ..
        }))
    ));
    assert!(run(&["--heartbeat-grace", "NaN"]).is_err());
    assert!(matches!(
        run(&["--max-body", "0"]),
        Err(CliError::Config(ConfigError::Invalid {
            key: "max_body",
            ..
        }))
    ));
    assert!(matches!(
        run(&["--connect-timeout", "0"]),
        Err(CliError::Config(ConfigError::Invalid {
            key: "connect_timeout",
            ..
        }))
    ));
    assert!(matches!(
        run(&["--log", "stompbox=loud"]),
        Err(CliError::Config(ConfigError::Invalid { key: "log", .. }))
    ));
    assert!(matches!(
        run(&["--slow-consumer", "ignore"]),
        Err(CliError::Args(_))
    ));
    assert!(matches!(
        run(&["--node-id", "70000"]),
        Err(CliError::Args(_))
    ));
    assert!(matches!(
        run(&["--stomp-listen", "localhost:61613"]),
        Err(CliError::Args(_))
    ));
}
