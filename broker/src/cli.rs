//! The command line: parsing flags, `STOMPBOX_*` environment variables and the TOML config
//! file into one resolved [`Config`], plus the `hash-password` subcommand.
//!
//! Precedence, highest first: command-line flag, environment variable, config file,
//! [`Config::default`]. Every flag `--some-flag` has the environment variable
//! `STOMPBOX_SOME_FLAG` and the config-file key `some_flag`; `docs/stompbox.example.toml`
//! lists them all with their defaults.
//!
//! Value formats:
//! - durations (`--connect-timeout`, `--shutdown-timeout`): a plain integer is milliseconds;
//!   anything else is a humantime duration such as `10s`, `500ms` or `1m 30s`;
//! - sizes are plain integers in bytes;
//! - `--heartbeat SEND_MS,RECV_MS` is in milliseconds like the STOMP `heart-beat` header;
//! - addresses are `IP:PORT` (`0.0.0.0:61613`, `[::1]:61613`), not host names;
//! - relative paths in the config file are relative to the file's directory, so a config
//!   file and its users file can move together; paths from flags and the environment are
//!   relative to the working directory.
//!
//! Loading also validates: the broker refuses to listen beyond loopback with no
//! authentication unless told `--allow-anonymous`, because dev mode believes any `login`.

use std::ffi::OsString;
use std::io::BufRead;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::auth::{self, AuthError};
use crate::config::{
    AclRule, AuthConfig, ChatConfig, Config, KafkaSettings, SlowConsumerPolicy, StorageConfig,
};

/// The log filter when none is configured: lifecycle events without per-frame noise.
pub const DEFAULT_LOG_FILTER: &str = "info";

/// What the process was asked to do.
#[derive(Debug)]
// Built once at startup, so the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Run the broker.
    Run {
        config: Config,
        /// A `tracing_subscriber::EnvFilter` directive string, already checked to parse.
        log_filter: String,
    },
    /// Print this argon2id PHC string (for the users file) and exit.
    HashPassword(String),
}

/// Why the configuration could not be loaded. Each message names the flag or key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Bad command line (also `--help`/`--version` from [`load_from`]; `clap::Error::exit`
    /// prints those correctly).
    #[error(transparent)]
    Args(#[from] clap::Error),
    #[error("cannot read config file {path}: {source}")]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path}: {source}")]
    ParseFile {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error("invalid {key}: {reason}")]
    Invalid { key: &'static str, reason: String },
    #[error(
        "refusing to start: {listener} listens on {addr}, which other hosts can reach, and no \
         authentication is configured, so anyone could connect as any user. Configure \
         --users-file, --jwt-secret or --jwt-public-key; or bind a loopback address such as \
         127.0.0.1; or pass --allow-anonymous to accept unauthenticated clients on purpose"
    )]
    Unauthenticated {
        listener: &'static str,
        addr: SocketAddr,
    },
    #[error("cannot read password from stdin: {0}")]
    Stdin(#[source] std::io::Error),
    #[error("empty password: pass it on stdin or with --password")]
    EmptyPassword,
    #[error(transparent)]
    Hash(#[from] AuthError),
}

const LISTEN: &str = "Listeners";
const AUTH: &str = "Authentication";
const LIMITS: &str = "Limits";
const HEARTBEAT: &str = "Heart-beats and slow consumers";
const CHAT: &str = "Chat application";
const STORAGE: &str = "Storage (default: embedded SQLite under --data-dir)";

#[derive(Debug, Parser)]
#[command(
    name = "stompbox",
    version,
    about = "A STOMP 1.2 message broker for real-time chat.",
    long_about = "A STOMP 1.2 message broker for real-time chat: STOMP over TCP, and over \
                  WebSocket at /ws on the HTTP listener.\n\n\
                  Settings come from flags, STOMPBOX_* environment variables and a TOML \
                  file (--config), in that order of precedence; see \
                  docs/stompbox.example.toml for every key. With no authentication \
                  configured the broker runs in dev mode (the login header is believed) \
                  and will only listen on loopback addresses unless --allow-anonymous is \
                  given.",
    after_help = "Durations: plain integers are milliseconds, or use units (10s, 500ms). \
                  Sizes are bytes. Run 'stompbox hash-password' to make a users-file entry."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Sub>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// Hash a password for the users file (argon2id PHC string on stdout).
    ///
    /// Reads the password from the first line of stdin unless --password is given; stdin
    /// keeps it out of shell history and `ps`. Example:
    /// `printf '%s' "$PW" | stompbox hash-password`, then add `alice = "<output>"` under
    /// `[users]`.
    HashPassword(HashPasswordArgs),
}

#[derive(Debug, Args)]
struct HashPasswordArgs {
    /// The password to hash (visible to other local users via `ps`; prefer stdin).
    #[arg(long)]
    password: Option<String>,
}

/// Every run-time setting; `None` means "not given here, ask the next source".
#[derive(Debug, Args)]
struct RunArgs {
    /// TOML config file; same keys as the flags in snake_case, plus [[acl]] rules.
    #[arg(long, env = "STOMPBOX_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    /// STOMP over TCP listen address [default: 127.0.0.1:61613].
    #[arg(long, env = "STOMPBOX_STOMP_LISTEN", value_name = "ADDR:PORT", help_heading = LISTEN)]
    stomp_listen: Option<SocketAddr>,
    /// HTTP listen address, WebSocket at /ws [default: 127.0.0.1:15674].
    #[arg(long, env = "STOMPBOX_HTTP_LISTEN", value_name = "ADDR:PORT", help_heading = LISTEN)]
    http_listen: Option<SocketAddr>,
    /// Allowed WebSocket Origin; repeat or comma-separate for several [default: any origin].
    #[arg(
        long,
        env = "STOMPBOX_WS_ALLOWED_ORIGIN",
        value_name = "ORIGIN",
        value_delimiter = ',',
        help_heading = LISTEN
    )]
    ws_allowed_origin: Vec<String>,

    /// Users file: TOML [users] table of name = "<argon2 PHC hash>".
    #[arg(long, env = "STOMPBOX_USERS_FILE", value_name = "FILE", help_heading = AUTH)]
    users_file: Option<PathBuf>,
    /// HS256 secret for JWTs sent as the CONNECT passcode (prefer the env var: flags show
    /// in `ps`).
    #[arg(long, env = "STOMPBOX_JWT_SECRET", value_name = "SECRET", hide_env_values = true, help_heading = AUTH)]
    jwt_secret: Option<String>,
    /// PEM file with the RS256 public key for JWTs sent as the CONNECT passcode.
    #[arg(long, env = "STOMPBOX_JWT_PUBLIC_KEY", value_name = "FILE", help_heading = AUTH)]
    jwt_public_key: Option<PathBuf>,
    /// Allow listening beyond loopback with no authentication configured (dev mode: any
    /// login is believed). Takes an optional =true/=false.
    #[arg(
        long,
        env = "STOMPBOX_ALLOW_ANONYMOUS",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new(),
        help_heading = AUTH
    )]
    allow_anonymous: Option<bool>,

    /// Largest whole frame in bytes [default: 4194304].
    #[arg(long, env = "STOMPBOX_MAX_FRAME_SIZE", value_name = "BYTES", help_heading = LIMITS)]
    max_frame_size: Option<usize>,
    /// Most headers in one frame [default: 64].
    #[arg(long, env = "STOMPBOX_MAX_HEADERS", value_name = "N", help_heading = LIMITS)]
    max_headers: Option<usize>,
    /// Longest header line in bytes [default: 16384].
    #[arg(long, env = "STOMPBOX_MAX_HEADER_LINE", value_name = "BYTES", help_heading = LIMITS)]
    max_header_line: Option<usize>,
    /// Largest body in bytes [default: 4194304].
    #[arg(long, env = "STOMPBOX_MAX_BODY", value_name = "BYTES", help_heading = LIMITS)]
    max_body: Option<usize>,
    /// Concurrent connections over all listeners [default: 18000].
    #[arg(long, env = "STOMPBOX_MAX_CONNECTIONS", value_name = "N", help_heading = LIMITS)]
    max_connections: Option<usize>,
    /// Subscriptions per session [default: 1024].
    #[arg(long, env = "STOMPBOX_MAX_SUBSCRIPTIONS", value_name = "N", help_heading = LIMITS)]
    max_subscriptions: Option<usize>,
    /// Time a new connection has to send CONNECT [default: 10s].
    #[arg(long, env = "STOMPBOX_CONNECT_TIMEOUT", value_name = "DURATION", help_heading = LIMITS)]
    connect_timeout: Option<DurationSetting>,
    /// Outbound queue per session, in frames [default: 4096].
    #[arg(long, env = "STOMPBOX_OUTBOUND_MAX_FRAMES", value_name = "N", help_heading = LIMITS)]
    outbound_max_frames: Option<usize>,
    /// Outbound queue per session, in bytes [default: 16777216].
    #[arg(long, env = "STOMPBOX_OUTBOUND_MAX_BYTES", value_name = "BYTES", help_heading = LIMITS)]
    outbound_max_bytes: Option<usize>,
    /// Messages a /queue holds while no consumer takes them [default: 100000].
    #[arg(long, env = "STOMPBOX_QUEUE_MAX_MESSAGES", value_name = "N", help_heading = LIMITS)]
    queue_max_messages: Option<usize>,
    /// Frames buffered by one open transaction [default: 10000].
    #[arg(long, env = "STOMPBOX_MAX_TRANSACTION_FRAMES", value_name = "N", help_heading = LIMITS)]
    max_transaction_frames: Option<usize>,
    /// Open transactions per session [default: 16].
    #[arg(long, env = "STOMPBOX_MAX_TRANSACTIONS", value_name = "N", help_heading = LIMITS)]
    max_transactions: Option<usize>,

    /// Server heart-beat offer in ms, as in the STOMP header; 0 disables [default: 10000,10000].
    #[arg(long, env = "STOMPBOX_HEARTBEAT", value_name = "SEND_MS,RECV_MS", help_heading = HEARTBEAT)]
    heartbeat: Option<HeartbeatSetting>,
    /// Multiplier on the inbound heart-beat interval before a silent peer is dropped, >= 1
    /// [default: 2.0].
    #[arg(long, env = "STOMPBOX_HEARTBEAT_GRACE", value_name = "F", help_heading = HEARTBEAT)]
    heartbeat_grace: Option<f64>,
    /// What to do when a session's outbound queue is full [default: disconnect].
    #[arg(
        long,
        env = "STOMPBOX_SLOW_CONSUMER",
        value_name = "POLICY",
        value_parser = slow_consumer_parser(),
        help_heading = HEARTBEAT
    )]
    slow_consumer: Option<SlowConsumerPolicy>,

    /// Directory of the embedded store [default: stompbox-data].
    #[arg(long, env = "STOMPBOX_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Node id, unique per node of a cluster; feeds message ids [default: 0].
    #[arg(long, env = "STOMPBOX_NODE_ID", value_name = "N")]
    node_id: Option<u16>,
    /// Redis of a cluster (redis://host:port); enables cluster mode. Without --node-id the
    /// node claims a free id there.
    #[arg(
        long,
        env = "STOMPBOX_REDIS_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    redis_url: Option<String>,
    /// Time shutdown spends closing sessions before giving up on stragglers [default: 10s].
    #[arg(long, env = "STOMPBOX_SHUTDOWN_TIMEOUT", value_name = "DURATION")]
    shutdown_timeout: Option<DurationSetting>,
    /// Log filter in tracing EnvFilter syntax, e.g. `info,stompbox=debug` [default: info].
    #[arg(long, env = "STOMPBOX_LOG", value_name = "FILTER")]
    log: Option<String>,

    /// Largest chat message content in bytes [default: 16384].
    #[arg(long, env = "STOMPBOX_CHAT_MAX_CONTENT", value_name = "BYTES", help_heading = CHAT)]
    chat_max_content: Option<usize>,
    /// A session's presence lapses this long after its last sign of life [default: 30s].
    #[arg(long, env = "STOMPBOX_PRESENCE_TTL", value_name = "DURATION", help_heading = CHAT)]
    presence_ttl: Option<DurationSetting>,
    /// Sustained chat requests per second per user; 0 disables the limit [default: 20].
    #[arg(long, env = "STOMPBOX_CHAT_RATE", value_name = "PER_SEC", help_heading = CHAT)]
    chat_rate: Option<f64>,
    /// Chat requests a user may make in a burst [default: 100].
    #[arg(long, env = "STOMPBOX_CHAT_BURST", value_name = "N", help_heading = CHAT)]
    chat_burst: Option<f64>,
    /// Bearer token for the backend services' HTTP API at /api; unset disables the API.
    #[arg(long, env = "STOMPBOX_SERVICE_TOKEN", value_name = "TOKEN", help_heading = CHAT)]
    service_token: Option<String>,

    /// Chat on PostgreSQL (`postgres://user@host:port/db`) instead of the embedded store;
    /// with --kafka-brokers, the store the sink fills and reads come from.
    #[arg(long, env = "STOMPBOX_POSTGRES_URL", value_name = "URL", help_heading = STORAGE)]
    postgres_url: Option<String>,
    /// Accepted messages go to Kafka (`host:port,…`) and a sink moves them into PostgreSQL;
    /// needs --postgres-url.
    #[arg(long, env = "STOMPBOX_KAFKA_BROKERS", value_name = "HOSTS", help_heading = STORAGE)]
    kafka_brokers: Option<String>,
    /// Topic of accepted messages and status changes [default: stompbox.chat.events].
    #[arg(long, env = "STOMPBOX_KAFKA_TOPIC", value_name = "NAME", help_heading = STORAGE)]
    kafka_topic: Option<String>,
    /// Partitions of the events topic when the broker creates it [default: 12].
    #[arg(long, env = "STOMPBOX_KAFKA_PARTITIONS", value_name = "N", help_heading = STORAGE)]
    kafka_partitions: Option<i32>,
    /// Replication factor of topics the broker creates (3 in production) [default: 1].
    #[arg(long, env = "STOMPBOX_KAFKA_REPLICATION", value_name = "N", help_heading = STORAGE)]
    kafka_replication: Option<i32>,
    /// How long a message waits for Kafka's ack before its sender is told it was not
    /// stored [default: 30s].
    #[arg(long, env = "STOMPBOX_KAFKA_TIMEOUT", value_name = "DURATION", help_heading = STORAGE)]
    kafka_timeout: Option<DurationSetting>,
    /// Messages waiting for Kafka's ack, at most; past it sends are refused [default: 10000].
    #[arg(long, env = "STOMPBOX_KAFKA_MAX_PENDING", value_name = "N", help_heading = STORAGE)]
    kafka_max_pending: Option<usize>,
}

fn slow_consumer_parser() -> impl TypedValueParser<Value = SlowConsumerPolicy> {
    PossibleValuesParser::new(["disconnect", "drop"]).map(|s| match s.as_str() {
        "drop" => SlowConsumerPolicy::Drop,
        _ => SlowConsumerPolicy::Disconnect,
    })
}

/// A duration written as milliseconds (`1500`) or with units (`10s`, `500ms`, `1m 30s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "DurationRepr")]
struct DurationSetting(Duration);

/// How a duration may appear in TOML: an integer (ms) or a string.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum DurationRepr {
    Millis(u64),
    Text(String),
}

impl FromStr for DurationSetting {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            return s
                .parse::<u64>()
                .map(|ms| Self(Duration::from_millis(ms)))
                .map_err(|e| e.to_string());
        }
        humantime::parse_duration(s)
            .map(Self)
            .map_err(|e| format!("{e} (use milliseconds like 1500, or units like 10s, 500ms)"))
    }
}

impl TryFrom<DurationRepr> for DurationSetting {
    type Error = String;

    fn try_from(repr: DurationRepr) -> Result<Self, Self::Error> {
        match repr {
            DurationRepr::Millis(ms) => Ok(Self(Duration::from_millis(ms))),
            DurationRepr::Text(text) => text.parse(),
        }
    }
}

/// `SEND_MS,RECV_MS`, the server's heart-beat offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
struct HeartbeatSetting {
    send: Duration,
    recv: Duration,
}

impl FromStr for HeartbeatSetting {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let usage = || format!("expected SEND_MS,RECV_MS such as 10000,10000, got {s:?}");
        let (send, recv) = s.split_once(',').ok_or_else(usage)?;
        let ms = |part: &str| part.trim().parse::<u64>().map_err(|_| usage());
        Ok(Self {
            send: Duration::from_millis(ms(send)?),
            recv: Duration::from_millis(ms(recv)?),
        })
    }
}

impl TryFrom<String> for HeartbeatSetting {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// The config file: the flags' keys in snake_case, all optional, plus `[[acl]]` rules.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    stomp_listen: Option<SocketAddr>,
    http_listen: Option<SocketAddr>,
    // The flag is singular because it repeats; in a file a list reads better plural.
    #[serde(alias = "ws_allowed_origin")]
    ws_allowed_origins: Option<Vec<String>>,
    users_file: Option<PathBuf>,
    jwt_secret: Option<String>,
    jwt_public_key: Option<PathBuf>,
    allow_anonymous: Option<bool>,
    max_frame_size: Option<usize>,
    max_headers: Option<usize>,
    max_header_line: Option<usize>,
    max_body: Option<usize>,
    max_connections: Option<usize>,
    max_subscriptions: Option<usize>,
    connect_timeout: Option<DurationSetting>,
    outbound_max_frames: Option<usize>,
    outbound_max_bytes: Option<usize>,
    queue_max_messages: Option<usize>,
    max_transaction_frames: Option<usize>,
    max_transactions: Option<usize>,
    heartbeat: Option<HeartbeatSetting>,
    heartbeat_grace: Option<f64>,
    slow_consumer: Option<SlowConsumerPolicy>,
    data_dir: Option<PathBuf>,
    node_id: Option<u16>,
    redis_url: Option<String>,
    shutdown_timeout: Option<DurationSetting>,
    log: Option<String>,
    chat_max_content: Option<usize>,
    presence_ttl: Option<DurationSetting>,
    chat_rate: Option<f64>,
    chat_burst: Option<f64>,
    service_token: Option<String>,
    postgres_url: Option<String>,
    kafka_brokers: Option<String>,
    kafka_topic: Option<String>,
    kafka_partitions: Option<i32>,
    kafka_replication: Option<i32>,
    kafka_timeout: Option<DurationSetting>,
    kafka_max_pending: Option<usize>,
    #[serde(default)]
    acl: Vec<AclRule>,
}

impl FileConfig {
    fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
            path: path.to_owned(),
            source,
        })?;
        let mut file: Self = toml::from_str(&text).map_err(|source| ConfigError::ParseFile {
            path: path.to_owned(),
            source,
        })?;
        if let Some(dir) = path.parent() {
            file.resolve_paths_against(dir);
        }
        Ok(file)
    }

    fn resolve_paths_against(&mut self, dir: &Path) {
        for path in [
            &mut self.users_file,
            &mut self.jwt_public_key,
            &mut self.data_dir,
        ]
        .into_iter()
        .flatten()
        {
            if path.is_relative() {
                *path = dir.join(&*path);
            }
        }
    }
}

/// Parses the process's arguments and environment and loads the config.
///
/// Like any clap program this prints help, version or usage errors itself and exits the
/// process; every other problem comes back as a [`ConfigError`]. `hash-password` reads stdin.
pub fn load() -> Result<Command, ConfigError> {
    resolve(Cli::parse())
}

/// [`load`] for an explicit argument list (the first item is the program name). The
/// environment is still read; clap errors, including `--help`, come back as
/// [`ConfigError::Args`].
pub fn load_from<I, T>(args: I) -> Result<Command, ConfigError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    parse(args, true)
}

fn parse<I, T>(args: I, read_env: bool) -> Result<Command, ConfigError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let mut command = Cli::command();
    if !read_env {
        command = command.mut_args(|arg| arg.env(None::<&'static str>));
    }
    let matches = command.try_get_matches_from(args)?;
    resolve(Cli::from_arg_matches(&matches)?)
}

fn resolve(cli: Cli) -> Result<Command, ConfigError> {
    match cli.command {
        Some(Sub::HashPassword(args)) => {
            let password = match args.password {
                Some(password) => password,
                None => read_password_line(std::io::stdin().lock())?,
            };
            if password.is_empty() {
                return Err(ConfigError::EmptyPassword);
            }
            Ok(Command::HashPassword(auth::hash_password(&password)?))
        }
        None => {
            let (config, log_filter) = merge(cli.run)?;
            validate(&config, &log_filter)?;
            Ok(Command::Run { config, log_filter })
        }
    }
}

/// The first line of `input`, without its line ending; other whitespace is kept because it
/// may be part of the password.
fn read_password_line(mut input: impl BufRead) -> Result<String, ConfigError> {
    let mut line = String::new();
    input.read_line(&mut line).map_err(ConfigError::Stdin)?;
    let trimmed = line.strip_suffix('\n').unwrap_or(&line);
    let trimmed = trimmed.strip_suffix('\r').unwrap_or(trimmed);
    Ok(trimmed.to_owned())
}

/// Layers flags/env (clap has already put flags over env) over the file over the defaults.
fn merge(args: RunArgs) -> Result<(Config, String), ConfigError> {
    let file = match &args.config {
        Some(path) => FileConfig::load(path)?,
        None => FileConfig::default(),
    };
    Ok(merge_layers(args, file))
}

fn layer<T>(flag_or_env: Option<T>, file: Option<T>, default: T) -> T {
    flag_or_env.or(file).unwrap_or(default)
}

fn merge_layers(args: RunArgs, file: FileConfig) -> (Config, String) {
    let d = Config::default();
    let origins = if args.ws_allowed_origin.is_empty() {
        file.ws_allowed_origins
    } else {
        Some(args.ws_allowed_origin)
    };
    let heartbeat = args.heartbeat.or(file.heartbeat);
    let node_id = args.node_id.or(file.node_id);
    let cluster = args
        .redis_url
        .or(file.redis_url)
        .map(|redis_url| crate::config::ClusterConfig {
            redis_url,
            claim_node_id: node_id.is_none(),
        });
    let config = Config {
        stomp_listen: layer(args.stomp_listen, file.stomp_listen, d.stomp_listen),
        http_listen: layer(args.http_listen, file.http_listen, d.http_listen),
        data_dir: layer(args.data_dir, file.data_dir, d.data_dir),
        node_id: node_id.unwrap_or(d.node_id),
        cluster,
        auth: AuthConfig {
            users_file: args.users_file.or(file.users_file).or(d.auth.users_file),
            jwt_secret: args.jwt_secret.or(file.jwt_secret).or(d.auth.jwt_secret),
            jwt_public_key: args
                .jwt_public_key
                .or(file.jwt_public_key)
                .or(d.auth.jwt_public_key),
            allow_anonymous: layer(
                args.allow_anonymous,
                file.allow_anonymous,
                d.auth.allow_anonymous,
            ),
        },
        acl: if file.acl.is_empty() { d.acl } else { file.acl },
        limits: crate::config::Limits {
            max_frame_size: layer(
                args.max_frame_size,
                file.max_frame_size,
                d.limits.max_frame_size,
            ),
            max_headers: layer(args.max_headers, file.max_headers, d.limits.max_headers),
            max_header_line: layer(
                args.max_header_line,
                file.max_header_line,
                d.limits.max_header_line,
            ),
            max_body: layer(args.max_body, file.max_body, d.limits.max_body),
            max_connections: layer(
                args.max_connections,
                file.max_connections,
                d.limits.max_connections,
            ),
            max_subscriptions: layer(
                args.max_subscriptions,
                file.max_subscriptions,
                d.limits.max_subscriptions,
            ),
            connect_timeout: args
                .connect_timeout
                .or(file.connect_timeout)
                .map_or(d.limits.connect_timeout, |s| s.0),
            outbound_max_frames: layer(
                args.outbound_max_frames,
                file.outbound_max_frames,
                d.limits.outbound_max_frames,
            ),
            outbound_max_bytes: layer(
                args.outbound_max_bytes,
                file.outbound_max_bytes,
                d.limits.outbound_max_bytes,
            ),
            queue_max_messages: layer(
                args.queue_max_messages,
                file.queue_max_messages,
                d.limits.queue_max_messages,
            ),
            max_transaction_frames: layer(
                args.max_transaction_frames,
                file.max_transaction_frames,
                d.limits.max_transaction_frames,
            ),
            max_transactions: layer(
                args.max_transactions,
                file.max_transactions,
                d.limits.max_transactions,
            ),
        },
        heartbeat: crate::config::HeartbeatConfig {
            send: heartbeat.map_or(d.heartbeat.send, |h| h.send),
            recv: heartbeat.map_or(d.heartbeat.recv, |h| h.recv),
            grace: layer(
                args.heartbeat_grace,
                file.heartbeat_grace,
                d.heartbeat.grace,
            ),
        },
        slow_consumer: layer(args.slow_consumer, file.slow_consumer, d.slow_consumer),
        ws_allowed_origins: origins.unwrap_or(d.ws_allowed_origins),
        shutdown_timeout: args
            .shutdown_timeout
            .or(file.shutdown_timeout)
            .map_or(d.shutdown_timeout, |s| s.0),
        chat: ChatConfig {
            max_content: layer(
                args.chat_max_content,
                file.chat_max_content,
                d.chat.max_content,
            ),
            presence_ttl: args
                .presence_ttl
                .or(file.presence_ttl)
                .map_or(d.chat.presence_ttl, |s| s.0),
            rate_per_sec: layer(args.chat_rate, file.chat_rate, d.chat.rate_per_sec),
            rate_burst: layer(args.chat_burst, file.chat_burst, d.chat.rate_burst),
            service_token: args.service_token.or(file.service_token),
        },
        storage: StorageConfig {
            postgres_url: args.postgres_url.or(file.postgres_url),
            kafka: args.kafka_brokers.or(file.kafka_brokers).map(|brokers| {
                let KafkaSettings {
                    mut kafka,
                    max_pending,
                } = KafkaSettings::new(brokers);
                if let Some(topic) = args.kafka_topic.or(file.kafka_topic) {
                    kafka.dead_letter_topic = format!("{topic}.dlt");
                    kafka.events_topic = topic;
                }
                kafka.partitions = layer(
                    args.kafka_partitions,
                    file.kafka_partitions,
                    kafka.partitions,
                );
                kafka.replication = layer(
                    args.kafka_replication,
                    file.kafka_replication,
                    kafka.replication,
                );
                if let Some(timeout) = args.kafka_timeout.or(file.kafka_timeout) {
                    kafka.delivery_timeout = timeout.0;
                }
                KafkaSettings {
                    kafka,
                    max_pending: layer(args.kafka_max_pending, file.kafka_max_pending, max_pending),
                }
            }),
        },
    };
    let log_filter = layer(args.log, file.log, DEFAULT_LOG_FILTER.to_owned());
    (config, log_filter)
}

/// Rejects settings that would make the broker unsafe or useless, saying what to change.
fn validate(config: &Config, log_filter: &str) -> Result<(), ConfigError> {
    if !config.auth.is_configured() && !config.auth.allow_anonymous {
        for (listener, addr) in [
            ("--stomp-listen", config.stomp_listen),
            ("--http-listen", config.http_listen),
        ] {
            if !addr.ip().to_canonical().is_loopback() {
                return Err(ConfigError::Unauthenticated { listener, addr });
            }
        }
    }

    if let Some(kafka) = &config.storage.kafka {
        if config.storage.postgres_url.is_none() {
            return Err(ConfigError::Invalid {
                key: "kafka_brokers",
                reason: "needs postgres_url too: history and sync read the PostgreSQL the sink \
                         fills"
                    .into(),
            });
        }
        if kafka.kafka.partitions < 1 || kafka.kafka.replication < 1 || kafka.max_pending == 0 {
            return Err(ConfigError::Invalid {
                key: "kafka_partitions",
                reason: "kafka_partitions, kafka_replication and kafka_max_pending must be at \
                         least 1"
                    .into(),
            });
        }
    }

    let grace = config.heartbeat.grace;
    if !grace.is_finite() || grace < 1.0 {
        return Err(ConfigError::Invalid {
            key: "heartbeat_grace",
            reason: format!("{grace} must be a number >= 1 (below 1 drops peers that are on time)"),
        });
    }

    if config.node_id > crate::id::MAX_NODE_ID {
        return Err(ConfigError::Invalid {
            key: "node_id",
            reason: format!(
                "{} is above {} (message ids hold 10 bits of node id)",
                config.node_id,
                crate::id::MAX_NODE_ID
            ),
        });
    }

    let limits = &config.limits;
    let nonzero = [
        ("max_frame_size", limits.max_frame_size),
        ("max_headers", limits.max_headers),
        ("max_header_line", limits.max_header_line),
        ("max_body", limits.max_body),
        ("max_connections", limits.max_connections),
        ("max_subscriptions", limits.max_subscriptions),
        ("outbound_max_frames", limits.outbound_max_frames),
        ("outbound_max_bytes", limits.outbound_max_bytes),
        ("queue_max_messages", limits.queue_max_messages),
    ];
    for (key, value) in nonzero {
        if value == 0 {
            return Err(ConfigError::Invalid {
                key,
                reason: "must be at least 1".to_owned(),
            });
        }
    }
    if limits.connect_timeout.is_zero() {
        return Err(ConfigError::Invalid {
            key: "connect_timeout",
            reason: "must be longer than 0 (every connection would time out at once)".to_owned(),
        });
    }

    tracing_subscriber::EnvFilter::try_new(log_filter).map_err(|e| ConfigError::Invalid {
        key: "log",
        reason: format!("{log_filter:?} is not a tracing filter: {e}"),
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AclAction, Limits};

    /// A scratch directory removed on drop, unique per process and test.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            let dir = std::env::temp_dir()
                .join(format!("stompbox-cli-test-{}-{tag}", std::process::id()));
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
    fn run(args: &[&str]) -> Result<(Config, String), ConfigError> {
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
            ],
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
            ],
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
            Err(ConfigError::Invalid { key: "node_id", .. })
        ));
    }

    #[test]
    fn example_config_documents_the_defaults() {
        let text = include_str!("../../docs/stompbox.example.toml");
        let file: FileConfig = toml::from_str(text).expect("example parses");
        let args = Cli::try_parse_from(["stompbox"]).expect("no args").run;
        let (config, log) = merge_layers(args, file);
        assert_eq!(format!("{config:?}"), format!("{:?}", Config::default()));
        assert_eq!(log, DEFAULT_LOG_FILTER);
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
        let command = load_from(["stompbox", "--config", &path, "--max-headers", "12"])
            .expect("loads with env");
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
    fn heartbeat_takes_two_millisecond_values() {
        let hb = |s: &str| s.parse::<HeartbeatSetting>();
        assert_eq!(
            hb("0,2500"),
            Ok(HeartbeatSetting {
                send: Duration::ZERO,
                recv: Duration::from_millis(2500)
            })
        );
        assert_eq!(
            hb(" 10 , 20 "),
            Ok(HeartbeatSetting {
                send: Duration::from_millis(10),
                recv: Duration::from_millis(20)
            })
        );
        assert!(hb("5").is_err());
        assert!(hb("5,x").is_err());
        assert!(hb("1s,1s").is_err());
    }

    #[test]
    fn public_listener_without_auth_is_refused_with_advice() {
        for args in [
            ["--stomp-listen", "0.0.0.0:61613"],
            ["--http-listen", "[::]:15674"],
            ["--stomp-listen", "192.0.2.1:61613"],
        ] {
            let err = run(&args).expect_err("refused");
            assert!(matches!(err, ConfigError::Unauthenticated { .. }), "{err}");
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
        // Flags stay relative to the working directory.
        let c = config(&["--users-file", "users.toml"]);
        assert_eq!(c.auth.users_file, Some(PathBuf::from("users.toml")));
    }

    #[test]
    fn bad_files_are_reported_with_their_path() {
        let dir = TempDir::new("bad-files");
        let typo = dir.file("typo.toml", "max_bdoy = 5\n");
        let err = run(&["--config", typo.to_str().expect("utf-8")]).expect_err("typo");
        assert!(matches!(err, ConfigError::ParseFile { .. }), "{err}");
        assert!(err.to_string().contains("max_bdoy"), "{err}");

        let wrong_type = dir.file("type.toml", "node_id = \"seven\"\n");
        assert!(run(&["--config", wrong_type.to_str().expect("utf-8")]).is_err());

        let missing = dir.0.join("missing.toml");
        let err = run(&["--config", missing.to_str().expect("utf-8")]).expect_err("missing");
        assert!(matches!(err, ConfigError::ReadFile { .. }), "{err}");
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(matches!(
            run(&["--heartbeat-grace", "0.5"]),
            Err(ConfigError::Invalid {
                key: "heartbeat_grace",
                ..
            })
        ));
        assert!(run(&["--heartbeat-grace", "NaN"]).is_err());
        assert!(matches!(
            run(&["--max-body", "0"]),
            Err(ConfigError::Invalid {
                key: "max_body",
                ..
            })
        ));
        assert!(matches!(
            run(&["--connect-timeout", "0"]),
            Err(ConfigError::Invalid {
                key: "connect_timeout",
                ..
            })
        ));
        assert!(matches!(
            run(&["--log", "stompbox=loud"]),
            Err(ConfigError::Invalid { key: "log", .. })
        ));
        assert!(matches!(
            run(&["--slow-consumer", "ignore"]),
            Err(ConfigError::Args(_))
        ));
        assert!(matches!(
            run(&["--node-id", "70000"]),
            Err(ConfigError::Args(_))
        ));
        assert!(matches!(
            run(&["--stomp-listen", "localhost:61613"]),
            Err(ConfigError::Args(_))
        ));
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
            Err(ConfigError::EmptyPassword)
        ));
    }
}
