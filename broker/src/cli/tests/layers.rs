//! Where each value comes from: defaults, flags, the environment, the file, and their order.

use std::time::Duration;

use super::*;

/// The numeric limits, in the order the parse tests give them distinct values.
fn counts(l: &Limits) -> [usize; 11] {
    [
        l.max_frame_size,
        l.max_headers,
        l.max_header_line,
        l.max_body,
        l.max_connections,
        l.max_subscriptions,
        l.outbound_max_frames,
        l.outbound_max_bytes,
        l.queue_max_messages,
        l.max_transaction_frames,
        l.max_transactions,
    ]
}

#[test]
fn no_arguments_give_the_defaults() {
    let (config, log) = run(&[]).expect("defaults load");
    assert_eq!(format!("{config:?}"), format!("{:?}", Config::default()));
    assert_eq!(log, DEFAULT_LOG_FILTER);
}

#[test]
fn every_flag_parses() {
    let (c, log) = run(&[
        "--stomp-listen=0.0.0.0:1234",
        "--http-listen=[::]:8080",
        "--data-dir=/var/lib/stompbox",
        "--node-id=9",
        "--users-file=/etc/stompbox/users.toml",
        "--jwt-secret=s3cret",
        "--jwt-public-key=/etc/stompbox/jwt.pem",
        "--allow-anonymous",
        "--max-frame-size=1001",
        "--max-headers=1002",
        "--max-header-line=1003",
        "--max-body=1004",
        "--max-connections=1005",
        "--max-subscriptions=1006",
        "--connect-timeout=1500",
        "--outbound-max-frames=1007",
        "--outbound-max-bytes=1008",
        "--queue-max-messages=1009",
        "--max-transaction-frames=1010",
        "--max-transactions=1011",
        "--heartbeat=1000,2000",
        "--heartbeat-grace=1.5",
        "--slow-consumer=drop",
        "--ws-allowed-origin=https://a.example",
        "--ws-allowed-origin=https://b.example,https://c.example",
        "--shutdown-timeout=2s",
        "--log=warn,stompbox=trace",
    ])
    .expect("loads");
    assert_eq!(c.stomp_listen, "0.0.0.0:1234".parse().expect("addr"));
    assert_eq!(c.http_listen, "[::]:8080".parse().expect("addr"));
    assert_eq!(c.data_dir, PathBuf::from("/var/lib/stompbox"));
    assert_eq!(c.node_id, 9);
    assert_eq!(
        c.auth.users_file,
        Some(PathBuf::from("/etc/stompbox/users.toml"))
    );
    assert_eq!(c.auth.jwt_secret.as_deref(), Some("s3cret"));
    assert_eq!(
        c.auth.jwt_public_key,
        Some(PathBuf::from("/etc/stompbox/jwt.pem"))
    );
    assert!(c.auth.allow_anonymous);
    let l = &c.limits;
    assert_eq!(
        counts(l),
        [
            1001, 1002, 1003, 1004, 1005, 1006, 1007, 1008, 1009, 1010, 1011
        ]
    );
    assert_eq!(l.connect_timeout, Duration::from_millis(1500));
    assert_eq!(c.heartbeat.send, Duration::from_secs(1));
    assert_eq!(c.heartbeat.recv, Duration::from_secs(2));
    assert_eq!(c.heartbeat.grace, 1.5);
    assert_eq!(c.slow_consumer, SlowConsumerPolicy::Drop);
    assert_eq!(
        c.ws_allowed_origins,
        [
            "https://a.example",
            "https://b.example",
            "https://c.example"
        ]
    );
    assert_eq!(c.shutdown_timeout, Duration::from_secs(2));
    assert_eq!(log, "warn,stompbox=trace");
}

#[test]
fn every_file_key_parses() {
    let dir = TempDir::new("all-keys");
    let path = dir.file(
        "stompbox.toml",
        r#"
        stomp_listen = "0.0.0.0:1234"
        http_listen = "127.0.0.1:8080"
        ws_allowed_origins = ["https://a.example"]
        users_file = "/abs/users.toml"
        jwt_secret = "s3cret"
        jwt_public_key = "/abs/jwt.pem"
        allow_anonymous = false
        max_frame_size = 2001
        max_headers = 2002
        max_header_line = 2003
        max_body = 2004
        max_connections = 2005
        max_subscriptions = 2006
        connect_timeout = 250
        outbound_max_frames = 2007
        outbound_max_bytes = 2008
        queue_max_messages = 2009
        max_transaction_frames = 2010
        max_transactions = 2011
        heartbeat = "0,5000"
        heartbeat_grace = 3.0
        slow_consumer = "drop"
        data_dir = "/abs/data"
        node_id = 12
        shutdown_timeout = "1m 30s"
        log = "debug"

        [[acl]]
        user = "*"
        action = "subscribe"
        prefix = "/user/{user}/"
        allow = true

        [[acl]]
        user = "mallory"
        action = "send"
        prefix = ""
        allow = false
        "#,
    );
    let path = path.to_str().expect("utf-8 temp path");
    let (c, log) = run(&["--config", path]).expect("loads");
    assert_eq!(c.stomp_listen, "0.0.0.0:1234".parse().expect("addr"));
    assert_eq!(c.http_listen, "127.0.0.1:8080".parse().expect("addr"));
    assert_eq!(c.ws_allowed_origins, ["https://a.example"]);
    assert_eq!(c.auth.users_file, Some(PathBuf::from("/abs/users.toml")));
    assert_eq!(c.auth.jwt_secret.as_deref(), Some("s3cret"));
    assert_eq!(c.auth.jwt_public_key, Some(PathBuf::from("/abs/jwt.pem")));
    assert!(!c.auth.allow_anonymous);
    let l = &c.limits;
    assert_eq!(
        counts(l),
        [
            2001, 2002, 2003, 2004, 2005, 2006, 2007, 2008, 2009, 2010, 2011
        ]
    );
    assert_eq!(l.connect_timeout, Duration::from_millis(250));
    assert_eq!(c.heartbeat.send, Duration::ZERO);
    assert_eq!(c.heartbeat.recv, Duration::from_secs(5));
    assert_eq!(c.heartbeat.grace, 3.0);
    assert_eq!(c.slow_consumer, SlowConsumerPolicy::Drop);
    assert_eq!(c.data_dir, PathBuf::from("/abs/data"));
    assert_eq!(c.node_id, 12);
    assert_eq!(c.shutdown_timeout, Duration::from_secs(90));
    assert_eq!(log, "debug");
    assert_eq!(
        c.acl,
        [
            AclRule {
                user: "*".to_owned(),
                action: AclAction::Subscribe,
                prefix: "/user/{user}/".to_owned(),
                allow: true,
            },
            AclRule {
                user: "mallory".to_owned(),
                action: AclAction::Send,
                prefix: String::new(),
                allow: false,
            },
        ]
    );
}

#[test]
fn flags_beat_the_file_and_the_file_beats_defaults() {
    let dir = TempDir::new("precedence");
    let path = dir.file(
        "stompbox.toml",
        "node_id = 3\nmax_body = 77\nws_allowed_origins = [\"https://file.example\"]\n\
         allow_anonymous = true\n",
    );
    let path = path.to_str().expect("utf-8 temp path");
    let c = config(&["--config", path, "--node-id", "5"]);
    assert_eq!(c.node_id, 5, "flag wins over file");
    assert_eq!(c.limits.max_body, 77, "file wins over default");
    assert_eq!(c.limits.max_headers, Limits::default().max_headers);
    assert_eq!(c.ws_allowed_origins, ["https://file.example"]);
    assert!(c.auth.allow_anonymous);

    let c = config(&[
        "--config",
        path,
        "--ws-allowed-origin",
        "https://flag.example",
        "--allow-anonymous=false",
    ]);
    assert_eq!(
        c.ws_allowed_origins,
        ["https://flag.example"],
        "a flag list replaces the file list"
    );
    assert!(
        !c.auth.allow_anonymous,
        "an explicit false overrides the file"
    );
}

/// Set by [`env_sits_between_flags_and_file`] on the child test process it spawns.
const CHILD_MARKER: &str = "STOMPBOX_CLI_TEST_CHILD_CONFIG";

/// The child half of [`env_sits_between_flags_and_file`]: a no-op in a normal test run.
#[test]
fn env_precedence_child() {
    let Some(path) = std::env::var_os(CHILD_MARKER) else {
        return;
    };
    let path = path.to_str().expect("utf-8 path").to_owned();
    let command =
        load_from(["stompbox", "--config", &path, "--max-headers", "12"]).expect("loads with env");
    let Command::Run { config: c, .. } = command else {
        panic!("expected run");
    };
    assert_eq!(c.node_id, 7, "env (7) wins over file (3)");
    assert_eq!(c.limits.max_headers, 12, "flag (12) wins over env (11)");
    assert_eq!(c.limits.max_body, 77, "file wins where env is silent");
    assert_eq!(c.limits.connect_timeout, Duration::from_millis(750));
    assert_eq!(
        c.ws_allowed_origins,
        ["https://a.example", "https://b.example"]
    );
    assert_eq!(c.slow_consumer, SlowConsumerPolicy::Drop);
    assert!(c.auth.allow_anonymous);
}

/// Environment variables are process-wide and setting them is `unsafe` in edition 2024,
/// so this test re-runs the test binary with the variables set and checks from there.
#[test]
fn env_sits_between_flags_and_file() {
    let dir = TempDir::new("env");
    let path = dir.file("stompbox.toml", "node_id = 3\nmax_body = 77\n");
    let test_name = format!(
        "{}::env_precedence_child",
        module_path!()
            .split_once("::")
            .map_or(module_path!(), |(_, rest)| rest)
    );
    let mut child = std::process::Command::new(std::env::current_exe().expect("exe"));
    child.args([
        test_name.as_str(),
        "--exact",
        "--nocapture",
        "--test-threads=1",
    ]);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("STOMPBOX_") {
            child.env_remove(key);
        }
    }
    child
        .env(CHILD_MARKER, &path)
        .env("STOMPBOX_NODE_ID", "7")
        .env("STOMPBOX_MAX_HEADERS", "11")
        .env("STOMPBOX_CONNECT_TIMEOUT", "750ms")
        .env(
            "STOMPBOX_WS_ALLOWED_ORIGIN",
            "https://a.example,https://b.example",
        )
        .env("STOMPBOX_SLOW_CONSUMER", "drop")
        .env("STOMPBOX_ALLOW_ANONYMOUS", "true");
    let output = child.output().expect("test binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("1 passed"), "child ran no test:\n{stdout}");
}

#[test]
fn durations_take_milliseconds_or_units() {
    let ms = |s: &str| s.parse::<DurationSetting>().map(|d| d.0);
    assert_eq!(ms("1500"), Ok(Duration::from_millis(1500)));
    assert_eq!(ms("10s"), Ok(Duration::from_secs(10)));
    assert_eq!(ms("500ms"), Ok(Duration::from_millis(500)));
    assert_eq!(ms("1m 30s"), Ok(Duration::from_secs(90)));
    assert!(ms("soon").is_err());
    assert!(ms("").is_err());
    assert!(ms("-5").is_err());
    assert!(run(&["--connect-timeout", "ten"]).is_err());
}

#[test]
fn relative_paths_in_the_file_are_relative_to_the_file() {
    let dir = TempDir::new("relative");
    let path = dir.file(
        "stompbox.toml",
        "users_file = \"users.toml\"\njwt_public_key = \"keys/jwt.pem\"\n\
         data_dir = \"data\"\n",
    );
    let c = config(&["--config", path.to_str().expect("utf-8 temp path")]);
    assert_eq!(c.auth.users_file, Some(dir.0.join("users.toml")));
    assert_eq!(c.auth.jwt_public_key, Some(dir.0.join("keys/jwt.pem")));
    assert_eq!(c.data_dir, dir.0.join("data"));
    let path = dir.file(
        "tls.toml",
        "tls_cert = \"tls/server.pem\"\ntls_key = \"tls/server-key.pem\"\n\
         tls_client_ca = \"tls/ca.pem\"\n",
    );
    let c = config(&["--config", path.to_str().expect("utf-8 temp path")]);
    assert_eq!(c.tls.tls_cert, Some(dir.0.join("tls/server.pem")));
    assert_eq!(c.tls.tls_key, Some(dir.0.join("tls/server-key.pem")));
    assert_eq!(c.tls.tls_client_ca, Some(dir.0.join("tls/ca.pem")));
    // Flags stay relative to the working directory.
    let c = config(&["--users-file", "users.toml"]);
    assert_eq!(c.auth.users_file, Some(PathBuf::from("users.toml")));
}
