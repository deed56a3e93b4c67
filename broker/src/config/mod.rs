//! The broker's configuration: every setting, declared once, with its default, its flag,
//! its `STOMPBOX_*` environment variable, its config-file key and its validation side by side.
//!
//! Each section has its own module (`listen`, `auth`, `limits`, `heartbeat`, `node`, `chat`,
//! `storage`, `admission`) holding one [`settings!`](setting::settings) declaration: one line
//! per setting (field, type, default, value name, help). From that line the macro derives
//! the resolved struct and its `Default`, the clap argument (its `[default: …]` shown from the
//! value itself), the config-file reader, and the key listing that the example-file test and
//! the help test check. Why a `macro_rules!` rather than clap derive structs with `Option` fields
//! and `value_source`: clap derive would still need a second, serde, struct for the file and a
//! third place for the defaults; and why not a configuration crate: none covers clap, env,
//! TOML and defaults together without writing each setting twice. Sections whose resolved
//! shape differs from their settings (`heartbeat`'s `SEND_MS,RECV_MS` pair, `storage`'s
//! Kafka group, the node's cluster mode) convert in their own module.
//!
//! Precedence, highest first: command-line flag, environment variable (clap applies both),
//! config file (`--config`), the declared default. Value formats:
//! - durations: a plain integer is milliseconds; anything else is a humantime duration such
//!   as `10s`, `500ms` or `1m 30s`;
//! - sizes are plain integers in bytes;
//! - `--heartbeat SEND_MS,RECV_MS` is in milliseconds like the STOMP `heart-beat` header;
//! - addresses are `IP:PORT` (`0.0.0.0:61613`, `[::1]:61613`), not host names;
//! - relative paths in the config file are relative to the file's directory, so a config
//!   file and its users file can move together; paths from flags and the environment are
//!   relative to the working directory.
//!
//! Loading also validates: the broker refuses to listen beyond loopback with no
//! authentication unless told `--allow-anonymous`, because dev mode believes any `login`.

mod acl;
mod admission;
mod auth;
mod chat;
mod cidr;
mod error;
mod heartbeat;
mod history;
mod limits;
mod listen;
mod node;
mod push;
pub(crate) mod setting;
mod storage;
#[cfg(test)]
mod tests;
mod tls;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::Duration;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};

pub use acl::{AclAction, AclRule};
pub use admission::AdmissionSettings;
pub use auth::AuthConfig;
pub use chat::ChatConfig;
pub use cidr::Cidr;
pub use error::ConfigError;
pub use heartbeat::{HeartbeatConfig, HeartbeatOffer, HeartbeatSettings, SlowConsumerPolicy};
pub use history::HistoryRule;
pub use limits::Limits;
pub use listen::{ListenSettings, SockJsConfig};
pub use node::{ClusterConfig, DEFAULT_LOG_FILTER, LogFormat, NodeSettings};
pub use push::{PushConfig, PushPreview, WEBPUSH_SERVICES};
pub use storage::{KafkaSettings, StorageConfig, StorageSettings};
pub use tls::{ClientAuth, TlsConfig};

/// Fully resolved settings. Built by `cli::load`, or `Config::default()` in tests.
#[derive(Debug, Clone)]
pub struct Config {
    /// STOMP over TCP.
    pub stomp_listen: SocketAddr,
    /// HTTP: WebSocket at `/ws` (later the HTTP API and metrics).
    pub http_listen: SocketAddr,
    /// Directory of the embedded store (used by the chat issue's store).
    pub data_dir: PathBuf,
    /// Node id, feeds message ids; unique per node of a cluster.
    pub node_id: u16,
    /// Cluster mode (`--redis-url`); `None` is the single-node broker.
    pub cluster: Option<ClusterConfig>,
    pub auth: AuthConfig,
    /// Per-destination authorization rules, first match wins; no rules means allow all.
    pub acl: Vec<AclRule>,
    /// The `--config` file these settings came from; a reload re-reads its `[[acl]]` rules.
    pub config_file: Option<PathBuf>,
    pub limits: Limits,
    pub heartbeat: HeartbeatConfig,
    pub slow_consumer: SlowConsumerPolicy,
    /// WebSocket `Origin` allow-list; empty allows any origin (auth is by passcode, not cookies).
    pub ws_allowed_origins: Vec<String>,
    /// `--web-root`: a directory served as static files on the HTTP listeners.
    pub web_root: Option<PathBuf>,
    /// SockJS heart-beat, disconnect delay and streaming limit.
    pub sockjs: SockJsConfig,
    /// How long shutdown spends closing sessions before it gives up on stragglers.
    pub shutdown_timeout: Duration,
    pub chat: ChatConfig,
    pub storage: StorageConfig,
    /// Per-address limits, the unauthenticated cap and the failed-login throttle.
    pub admission: AdmissionSettings,
    /// STOMP over TLS and HTTPS listeners, their certificate, and client certificates.
    pub tls: TlsConfig,
    /// How a draining node answers not-ready before its listeners close (`--drain-delay`).
    pub drain_delay: Duration,
    /// Time over which a draining node closes its sessions (`--drain-period`).
    pub drain_period: Duration,
    pub log_format: LogFormat,
    /// Push notifications to offline users (`--push-*`).
    pub push: PushConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self::from_settings(Settings::default(), Vec::new()).0
    }
}

/// Every setting of every section as one source gives it. The sections are flattened into
/// the command line in this order, which is the order of `--help`.
#[derive(Debug, Default, clap::Args)]
pub(crate) struct Settings {
    #[command(flatten)]
    pub(crate) listen: listen::ListenLayer,
    #[command(flatten)]
    pub(crate) auth: auth::AuthLayer,
    #[command(flatten)]
    pub(crate) limits: limits::LimitsLayer,
    #[command(flatten)]
    pub(crate) heartbeat: heartbeat::HeartbeatLayer,
    #[command(flatten)]
    pub(crate) node: node::NodeLayer,
    #[command(flatten)]
    pub(crate) chat: chat::ChatLayer,
    #[command(flatten)]
    pub(crate) storage: storage::StorageLayer,
    #[command(flatten)]
    pub(crate) admission: admission::AdmissionLayer,
    #[command(flatten)]
    pub(crate) tls: tls::TlsLayer,
    #[command(flatten)]
    pub(crate) push: push::PushLayer,
}

impl Settings {
    /// Every setting's key, section by section.
    #[cfg(test)]
    pub(crate) fn keys() -> impl Iterator<Item = &'static str> {
        [
            listen::ListenLayer::KEYS,
            auth::AuthLayer::KEYS,
            limits::LimitsLayer::KEYS,
            heartbeat::HeartbeatLayer::KEYS,
            node::NodeLayer::KEYS,
            chat::ChatLayer::KEYS,
            storage::StorageLayer::KEYS,
            admission::AdmissionLayer::KEYS,
            tls::TlsLayer::KEYS,
            push::PushLayer::KEYS,
        ]
        .into_iter()
        .flatten()
        .copied()
    }

    /// Every key the config file accepts for a setting (keys and their aliases).
    fn file_keys() -> impl Iterator<Item = &'static str> {
        [
            listen::ListenLayer::FILE_KEYS,
            auth::AuthLayer::FILE_KEYS,
            limits::LimitsLayer::FILE_KEYS,
            heartbeat::HeartbeatLayer::FILE_KEYS,
            node::NodeLayer::FILE_KEYS,
            chat::ChatLayer::FILE_KEYS,
            storage::StorageLayer::FILE_KEYS,
            admission::AdmissionLayer::FILE_KEYS,
            tls::TlsLayer::FILE_KEYS,
            push::PushLayer::FILE_KEYS,
        ]
        .into_iter()
        .flatten()
        .copied()
    }

    /// Every setting at its default.
    #[cfg(test)]
    pub(crate) fn defaults() -> Self {
        Self {
            listen: listen::ListenLayer::defaults(),
            auth: auth::AuthLayer::defaults(),
            limits: limits::LimitsLayer::defaults(),
            heartbeat: heartbeat::HeartbeatLayer::defaults(),
            node: node::NodeLayer::defaults(),
            chat: chat::ChatLayer::defaults(),
            storage: storage::StorageLayer::defaults(),
            admission: admission::AdmissionLayer::defaults(),
            tls: tls::TlsLayer::defaults(),
            push: push::PushLayer::defaults(),
        }
    }

    /// `(key, value as a flag takes it)` of every setting; `None`: not given.
    #[cfg(test)]
    pub(crate) fn shown(&self) -> Vec<(&'static str, Option<Option<String>>)> {
        [
            self.listen.shown(),
            self.auth.shown(),
            self.limits.shown(),
            self.heartbeat.shown(),
            self.node.shown(),
            self.chat.shown(),
            self.storage.shown(),
            self.admission.shown(),
            self.tls.shown(),
            self.push.shown(),
        ]
        .concat()
    }

    /// This source over `lower`.
    fn or(self, lower: Self) -> Self {
        Self {
            listen: self.listen.or(lower.listen),
            auth: self.auth.or(lower.auth),
            limits: self.limits.or(lower.limits),
            heartbeat: self.heartbeat.or(lower.heartbeat),
            node: self.node.or(lower.node),
            chat: self.chat.or(lower.chat),
            storage: self.storage.or(lower.storage),
            admission: self.admission.or(lower.admission),
            tls: self.tls.or(lower.tls),
            push: self.push.or(lower.push),
        }
    }

    /// Reads the file value of `key`; `Ok(false)` if no section has that key.
    fn read<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        Ok(self.listen.read(key, map)?
            || self.auth.read(key, map)?
            || self.limits.read(key, map)?
            || self.heartbeat.read(key, map)?
            || self.node.read(key, map)?
            || self.chat.read(key, map)?
            || self.storage.read(key, map)?
            || self.admission.read(key, map)?
            || self.tls.read(key, map)?
            || self.push.read(key, map)?)
    }
}

impl Config {
    /// Layers the command line and environment (`flags`) over the config file at `file` over
    /// the defaults, and validates the result. Also returns the log filter.
    pub(crate) fn load(
        flags: Settings,
        file: Option<&Path>,
    ) -> Result<(Config, String), ConfigError> {
        let file_path = file;
        let file = match file {
            Some(path) => FileLayer::load(path)?,
            None => FileLayer::default(),
        };
        let (mut config, log_filter) = Self::from_layers(flags, file);
        config.validate(&log_filter)?;
        config.config_file = file_path.map(Path::to_path_buf);
        Ok((config, log_filter))
    }

    /// `flags` over `file` over the defaults, not yet validated.
    pub(crate) fn from_layers(flags: Settings, file: FileLayer) -> (Config, String) {
        Self::from_settings(flags.or(file.settings), file.acl)
    }

    fn from_settings(settings: Settings, acl: Vec<AclRule>) -> (Config, String) {
        // Cluster mode claims an id when no source chose one, 0 included.
        let claim_node_id = settings.node.node_id.is_none();
        let listen = settings.listen.resolve();
        let node = settings.node.resolve();
        let heartbeat = settings.heartbeat.resolve();
        let config = Config {
            stomp_listen: listen.stomp_listen,
            http_listen: listen.http_listen,
            data_dir: node.data_dir,
            node_id: node.node_id,
            cluster: node.redis_url.map(|redis_url| ClusterConfig {
                redis_url,
                redis_ca: node.redis_ca,
                claim_node_id,
            }),
            auth: settings.auth.resolve(),
            acl,
            config_file: None,
            limits: settings.limits.resolve(),
            heartbeat: HeartbeatConfig::from(&heartbeat),
            slow_consumer: heartbeat.slow_consumer,
            sockjs: SockJsConfig::from(&listen),
            ws_allowed_origins: listen.ws_allowed_origins,
            web_root: listen.web_root,
            shutdown_timeout: node.shutdown_timeout,
            chat: settings.chat.resolve(),
            storage: settings.storage.resolve().into(),
            admission: settings.admission.resolve(),
            tls: settings.tls.resolve(),
            drain_delay: node.drain_delay,
            drain_period: node.drain_period,
            log_format: node.log_format,
            push: settings.push.resolve(),
        };
        (config, node.log)
    }

    /// Rejects settings that would make the broker unsafe or useless, saying what to change.
    fn validate(&self, log_filter: &str) -> Result<(), ConfigError> {
        listen::check_reachable(&self.auth, self.stomp_listen, self.http_listen)?;
        listen::check_web_root(self.web_root.as_deref())?;
        self.storage.validate()?;
        self.heartbeat.validate()?;
        node::check_node_id(self.node_id)?;
        self.limits.validate()?;
        self.admission.validate(&self.limits)?;
        self.tls.validate()?;
        tls::check_reachable(&self.auth, &self.tls)?;
        self.push.validate()?;
        node::check_log_filter(log_filter)
    }
}

/// The config file: every setting's key (or alias), all optional, plus `[[acl]]` rules.
/// Unknown keys are an error, so a typo is caught at startup instead of silently ignored.
#[derive(Debug, Default)]
pub(crate) struct FileLayer {
    settings: Settings,
    acl: Vec<AclRule>,
}

/// The key of the file's `[[acl]]` rules, the one key that is not a setting.
const ACL_KEY: &str = "acl";

/// Every key the file accepts, for "unknown field …, expected one of …".
static FILE_KEYS: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| Settings::file_keys().chain([ACL_KEY]).collect());

/// The `[[acl]]` rules of the config file at `path` (a reload re-reads only these).
pub fn acl_rules(path: &Path) -> Result<Vec<AclRule>, ConfigError> {
    Ok(FileLayer::load(path)?.acl)
}

impl FileLayer {
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
        let auth = &mut self.settings.auth;
        for path in [
            auth.users_file.as_mut().and_then(Option::as_mut),
            auth.jwt_public_key.as_mut().and_then(Option::as_mut),
            auth.jwt_jwks_ca.as_mut().and_then(Option::as_mut),
            self.settings
                .listen
                .web_root
                .as_mut()
                .and_then(Option::as_mut),
            self.settings.node.data_dir.as_mut(),
            self.settings
                .node
                .redis_ca
                .as_mut()
                .and_then(Option::as_mut),
        ]
        .into_iter()
        .chain(self.settings.tls.paths_mut())
        .flatten()
        {
            if path.is_relative() {
                *path = dir.join(&*path);
            }
        }
    }
}

impl<'de> serde::Deserialize<'de> for FileLayer {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(FileVisitor)
    }
}

struct FileVisitor;

impl<'de> Visitor<'de> for FileVisitor {
    type Value = FileLayer;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a table of stompbox settings")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FileLayer, A::Error> {
        let mut file = FileLayer::default();
        // Each value is read as its key is met, so the TOML error points at the line.
        while let Some(key) = map.next_key_seed(KnownKey)? {
            if key == ACL_KEY {
                file.acl = map.next_value()?;
            } else if !file.settings.read(key, &mut map)? {
                return Err(de::Error::unknown_field(key, FILE_KEYS.as_slice()));
            }
        }
        Ok(file)
    }
}

/// A file key, refused while it is read (so the error points at it) unless it is known.
struct KnownKey;

impl<'de> DeserializeSeed<'de> for KnownKey {
    type Value = &'static str;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        let key = <String as serde::Deserialize>::deserialize(deserializer)?;
        FILE_KEYS
            .iter()
            .copied()
            .find(|known| *known == key)
            .ok_or_else(|| de::Error::unknown_field(&key, FILE_KEYS.as_slice()))
    }
}
