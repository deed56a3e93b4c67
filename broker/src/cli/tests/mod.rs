//! The command line's tests: the shared helpers, `--help` and the example file, and
//! `hash-password`; where values come from in `layers`, what is refused or derived in
//! `refusals`.

mod layers;
mod refusals;
mod services;

use super::*;
use crate::config::setting::DurationSetting;
use crate::config::{AclAction, AclRule, FileLayer, Limits, SlowConsumerPolicy};

/// A scratch directory removed on drop, unique per process and test.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("stompbox-cli-test-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir writable");
        Self(dir)
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("temp dir writable");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Parses `args` (after the program name) ignoring the environment, so a developer's
/// `STOMPBOX_*` variables cannot change the outcome.
fn run(args: &[&str]) -> Result<(Config, String), CliError> {
    let argv = std::iter::once("stompbox").chain(args.iter().copied());
    match parse(argv, false)? {
        Command::Run { config, log_filter } => Ok((config, log_filter)),
        Command::HashPassword(_) => panic!("expected a run command"),
    }
}

fn config(args: &[&str]) -> Config {
    match run(args) {
        Ok((config, _)) => config,
        Err(e) => panic!("{args:?} should load: {e}"),
    }
}

#[test]
fn help_is_well_formed_and_lists_every_flag() {
    Cli::command().debug_assert();
    let help = Cli::command().render_long_help().to_string();
    for flag in [
        "--config",
        "--stomp-listen",
        "--http-listen",
        "--data-dir",
        "--node-id",
        "--users-file",
        "--jwt-secret",
        "--jwt-public-key",
        "--allow-anonymous",
        "--max-frame-size",
        "--max-headers",
        "--max-header-line",
        "--max-body",
        "--max-connections",
        "--max-subscriptions",
        "--connect-timeout",
        "--outbound-max-frames",
        "--outbound-max-bytes",
        "--queue-max-messages",
        "--heartbeat",
        "--heartbeat-grace",
        "--slow-consumer",
        "--ws-allowed-origin",
        "--shutdown-timeout",
        "--log",
        "hash-password",
        "STOMPBOX_MAX_BODY",
    ] {
        assert!(help.contains(flag), "help lacks {flag}");
    }
}

#[test]
fn example_config_documents_the_defaults() {
    let text = include_str!("../../../../docs/stompbox.example.toml");
    let file: FileLayer = toml::from_str(text).expect("example parses");
    let args = Cli::try_parse_from(["stompbox"]).expect("no args").run;
    let (config, log) = Config::from_layers(args.settings, file);
    assert_eq!(format!("{config:?}"), format!("{:?}", Config::default()));
    assert_eq!(log, DEFAULT_LOG_FILTER);
}

#[test]
fn hash_password_prints_a_verifiable_argon2id_hash() {
    let command = parse(
        ["stompbox", "hash-password", "--password", "hunter2"],
        false,
    )
    .expect("hashes");
    let Command::HashPassword(phc) = command else {
        panic!("expected hash-password");
    };
    assert!(phc.starts_with("$argon2id$"), "{phc}");
    let hash = argon2::password_hash::phc::PasswordHash::new(&phc).expect("PHC string");
    use argon2::PasswordVerifier;
    assert!(
        argon2::Argon2::default()
            .verify_password(b"hunter2", &hash)
            .is_ok()
    );
}

#[test]
fn password_line_keeps_all_but_the_line_ending() {
    let read = |s: &str| read_password_line(s.as_bytes()).expect("reads");
    assert_eq!(read("pass word \n"), "pass word ");
    assert_eq!(read("crlf\r\nsecond line"), "crlf");
    assert_eq!(read("no newline"), "no newline");
    assert_eq!(read(""), "");
    assert!(matches!(
        parse(["stompbox", "hash-password", "--password", ""], false),
        Err(CliError::EmptyPassword)
    ));
}
