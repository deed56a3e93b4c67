//! The command line's shape: the `stompbox` command, its `--config` file, and the
//! `hash-password` subcommand. The settings' flags come from [`crate::config`], where each
//! setting is declared once; every flag `--some-flag` has the environment variable
//! `STOMPBOX_SOME_FLAG` and the config-file key `some_flag`, and `docs/stompbox.example.toml`
//! lists them all with their defaults.

use std::ffi::OsString;
use std::io::BufRead;
use std::path::PathBuf;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::auth::{self, AuthError};
use crate::config::{Config, Settings};

pub use crate::config::{ConfigError, DEFAULT_LOG_FILTER};

/// Why the process cannot do what the command line asked.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad command line (also `--help`/`--version` from [`load_from`]; `clap::Error::exit`
    /// prints those correctly).
    #[error(transparent)]
    Args(#[from] clap::Error),
    /// The settings were refused (a file that does not parse, a value out of range, ...).
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot read password from stdin: {0}")]
    Stdin(#[source] std::io::Error),
    #[error("empty password: pass it on stdin or with --password")]
    EmptyPassword,
    #[error(transparent)]
    Hash(#[from] AuthError),
}

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

/// The config file, then every run-time setting as the command line and environment give it.
#[derive(Debug, Args)]
struct RunArgs {
    /// TOML config file; same keys as the flags in snake_case, plus [[acl]] rules.
    #[arg(long, env = "STOMPBOX_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    settings: Settings,
}

/// Parses the process's arguments and environment and loads the config.
///
/// Like any clap program this prints help, version or usage errors itself and exits the
/// process; every other problem comes back as a [`CliError`]. `hash-password` reads stdin.
pub fn load() -> Result<Command, CliError> {
    resolve(Cli::parse())
}

/// [`load`] for an explicit argument list (the first item is the program name). The
/// environment is still read; clap errors, including `--help`, come back as
/// [`CliError::Args`].
pub fn load_from<I, T>(args: I) -> Result<Command, CliError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    parse(args, true)
}

fn parse<I, T>(args: I, read_env: bool) -> Result<Command, CliError>
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

fn resolve(cli: Cli) -> Result<Command, CliError> {
    match cli.command {
        Some(Sub::HashPassword(args)) => {
            let password = match args.password {
                Some(password) => password,
                None => read_password_line(std::io::stdin().lock())?,
            };
            if password.is_empty() {
                return Err(CliError::EmptyPassword);
            }
            Ok(Command::HashPassword(auth::hash_password(&password)?))
        }
        None => {
            let (config, log_filter) = Config::load(cli.run.settings, cli.run.config.as_deref())?;
            Ok(Command::Run { config, log_filter })
        }
    }
}

/// The first line of `input`, without its line ending; other whitespace is kept because it
/// may be part of the password.
fn read_password_line(mut input: impl BufRead) -> Result<String, CliError> {
    let mut line = String::new();
    input.read_line(&mut line).map_err(CliError::Stdin)?;
    let trimmed = line.strip_suffix('\n').unwrap_or(&line);
    let trimmed = trimmed.strip_suffix('\r').unwrap_or(trimmed);
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests;
