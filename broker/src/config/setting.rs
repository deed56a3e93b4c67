//! One setting: how its value is read from a flag, a `STOMPBOX_*` environment variable or a
//! config-file key, and how its default is shown; and [`settings!`], which declares a section
//! of settings once and derives everything else from that declaration.
//!
//! Naming rule, enforced here so it cannot drift: the config-file key `some_key` is the flag
//! `--some-key` and the environment variable `STOMPBOX_SOME_KEY`. A file may also spell a key
//! by its alias (`ws_allowed_origins` for the repeatable `ws_allowed_origin`).

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::builder::{BoolishValueParser, ValueParser};
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

/// A type a setting can hold: how flags, environment variables and the file spell it.
pub(crate) trait Value: Clone + Send + Sync + 'static {
    /// Parses a flag or environment variable. Produces `Self`, except that an optional
    /// setting's parser produces the value inside (see [`Value::from_matches`]).
    fn parser() -> ValueParser;

    /// Reads a config-file value.
    fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error>;

    /// The value as a flag takes it, for `--help` and the example-file check; `None` when
    /// there is nothing to show (an unset optional setting, an empty list).
    fn shown(&self) -> Option<String>;

    /// How the argument takes values: one per occurrence unless a type says otherwise.
    fn shape(arg: Arg) -> Arg {
        arg.action(ArgAction::Set)
    }

    /// The value the command line or the environment gave, if either did. A default shown
    /// in `--help` is clap's, so it is skipped here: the config file sits between the two.
    fn from_matches(matches: &ArgMatches, id: &str) -> Option<Self> {
        given(matches, id)
            .then(|| matches.get_one::<Self>(id).cloned())
            .flatten()
    }
}

/// True when the flag or its environment variable was set (not merely defaulted).
fn given(matches: &ArgMatches, id: &str) -> bool {
    matches
        .value_source(id)
        .is_some_and(|source| source != ValueSource::DefaultValue)
}

/// The flag of one setting, named by the naming rule, its default shown from the value.
pub(crate) fn arg<T: Value>(
    key: &'static str,
    value_name: &'static str,
    help: &'static str,
    heading: Option<&'static str>,
    default: &T,
) -> Arg {
    let arg = Arg::new(key)
        .long(leak(key.replace('_', "-")))
        .env(leak(format!("STOMPBOX_{}", key.to_ascii_uppercase())))
        .value_name(value_name)
        .help(help)
        .help_heading(heading)
        .value_parser(T::parser());
    let arg = T::shape(arg);
    match default.shown() {
        Some(text) => arg.default_value(leak(text)),
        None => arg,
    }
}

/// clap takes names as `&'static str` unless built with its `string` feature. The command is
/// built once per process (a few times in tests), so keeping these few bytes for good costs
/// less than another feature of a shared dependency.
fn leak(text: String) -> &'static str {
    text.leak()
}

/// A config-file value read by its setting's [`Value::deserialize`].
pub(crate) struct FileValue<T>(pub T);

impl<'de, T: Value> Deserialize<'de> for FileValue<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(FileValue)
    }
}

/// Types whose flag text is their `FromStr` and whose file value is their serde form.
macro_rules! plain_value {
    ($($ty:ty),*) => {$(
        impl Value for $ty {
            fn parser() -> ValueParser {
                clap::value_parser!($ty).into()
            }

            fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                <$ty as Deserialize>::deserialize(deserializer)
            }

            fn shown(&self) -> Option<String> {
                Some(self.to_string())
            }
        }
    )*};
}

plain_value!(usize, u16, i32, String, SocketAddr);

impl Value for f64 {
    fn parser() -> ValueParser {
        clap::value_parser!(f64).into()
    }

    fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        <f64 as Deserialize>::deserialize(deserializer)
    }

    fn shown(&self) -> Option<String> {
        // `{:?}` keeps the `.0` that says "a number with a fraction is fine here".
        Some(format!("{self:?}"))
    }
}

impl Value for PathBuf {
    fn parser() -> ValueParser {
        clap::value_parser!(PathBuf)
    }

    fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        <PathBuf as Deserialize>::deserialize(deserializer)
    }

    fn shown(&self) -> Option<String> {
        Some(self.display().to_string())
    }
}

/// `--flag`, `--flag=true` or `--flag=false`, so a flag can override a `true` from the file.
impl Value for bool {
    fn parser() -> ValueParser {
        BoolishValueParser::new().into()
    }

    fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        <bool as Deserialize>::deserialize(deserializer)
    }

    fn shown(&self) -> Option<String> {
        Some(self.to_string())
    }

    fn shape(arg: Arg) -> Arg {
        arg.action(ArgAction::Set)
            .num_args(0..=1)
            .require_equals(true)
            .default_missing_value("true")
    }
}

/// Milliseconds (`1500`) or humantime units (`10s`, `500ms`, `1m 30s`).
impl Value for Duration {
    fn parser() -> ValueParser {
        ValueParser::new(|text: &str| text.parse::<DurationSetting>().map(|d| d.0))
    }

    fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        DurationSetting::deserialize(deserializer).map(|d| d.0)
    }

    fn shown(&self) -> Option<String> {
        Some(humantime::format_duration(*self).to_string())
    }
}

/// A list: the flag repeats or takes commas; a list from one source replaces the next's. An
/// empty item is no item, so `--flag=` gives an empty list over a file's or a default's list.
impl<T> Value for Vec<T>
where
    T: FromStr + fmt::Display + DeserializeOwned + Clone + Send + Sync + 'static,
    T::Err: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn parser() -> ValueParser {
        ValueParser::new(|text: &str| match text.trim() {
            "" => Ok(None),
            item => item.parse::<T>().map(Some),
        })
    }

    fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        <Vec<T> as Deserialize>::deserialize(deserializer)
    }

    fn shown(&self) -> Option<String> {
        (!self.is_empty()).then(|| {
            let items: Vec<String> = self.iter().map(T::to_string).collect();
            items.join(",")
        })
    }

    fn shape(arg: Arg) -> Arg {
        arg.action(ArgAction::Append).value_delimiter(',')
    }

    fn from_matches(matches: &ArgMatches, id: &str) -> Option<Self> {
        given(matches, id)
            .then(|| {
                matches
                    .get_many::<Option<T>>(id)
                    .map(|items| items.flatten().cloned().collect())
            })
            .flatten()
    }
}

/// A setting with no default (a secret, a URL that switches a feature on).
impl<T: Value> Value for Option<T> {
    fn parser() -> ValueParser {
        T::parser()
    }

    fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(Some)
    }

    fn shown(&self) -> Option<String> {
        self.as_ref().and_then(T::shown)
    }

    fn shape(arg: Arg) -> Arg {
        T::shape(arg)
    }

    fn from_matches(matches: &ArgMatches, id: &str) -> Option<Self> {
        T::from_matches(matches, id).map(Some)
    }
}

/// A duration written as milliseconds (`1500`) or with units (`10s`, `500ms`, `1m 30s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "DurationRepr")]
pub(crate) struct DurationSetting(pub Duration);

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

/// Declares a section of settings once. Each line is
///
/// ```text
/// /// Why the default is what it is (becomes the field's doc).
/// field [as "key" [| "alias"]*]: Type = default, "VALUE_NAME", "flag help" [, clap_arg_method(args)]*;
/// ```
///
/// and the macro generates:
/// - `pub struct $name` with one `pub` field per setting, and its `Default` from the defaults;
/// - `pub(crate) struct $layer`, the same fields as `Option`s: what one source (the command
///   line with its environment, or the config file) gave. It is a clap `Args` (flag, env var,
///   help, heading, `[default: …]` shown from the value) and reads its keys from the file;
///   `or` puts one source over another and `resolve` fills the rest with the defaults.
///
/// The key defaults to the field's name; flag and environment variable follow the naming rule.
macro_rules! settings {
    (
        $(#[$meta:meta])*
        pub struct $name:ident, layer $layer:ident, heading $heading:expr;
        $(
            $(#[$doc:meta])*
            $field:ident $(as $key:literal $(| $alias:literal)*)? : $ty:ty = $default:expr,
                $value_name:literal, $help:literal $(, $modifier:ident($($modifier_arg:expr),*))*;
        )*
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone)]
        pub struct $name {
            $( $(#[$doc])* pub $field: $ty, )*
        }

        impl Default for $name {
            fn default() -> Self {
                Self { $( $field: $default, )* }
            }
        }

        #[doc = concat!("[`", stringify!($name), "`] as one source gives it (`None`: not given there).")]
        #[derive(Debug, Default)]
        pub(crate) struct $layer {
            $( pub(crate) $field: Option<$ty>, )*
        }

        impl $layer {
            /// Every setting's key, which names its flag and environment variable too.
            #[cfg(test)]
            pub(crate) const KEYS: &'static [&'static str] =
                &[$( $crate::config::setting::settings!(@key $field $($key)?), )*];
            /// Every key the config file accepts: each setting's key, then its aliases.
            pub(crate) const FILE_KEYS: &'static [&'static str] = &[$(
                $crate::config::setting::settings!(@key $field $($key)?), $($($alias,)*)?
            )*];

            /// Every setting at its default, as if one source gave them all.
            #[cfg(test)]
            pub(crate) fn defaults() -> Self {
                let defaults = $name::default();
                Self { $( $field: Some(defaults.$field), )* }
            }

            /// This source over `lower`: a setting given here wins.
            pub(crate) fn or(self, lower: Self) -> Self {
                Self { $( $field: self.$field.or(lower.$field), )* }
            }

            /// The settings, with the defaults where no source gave one.
            pub(crate) fn resolve(self) -> $name {
                let defaults = $name::default();
                $name { $( $field: self.$field.unwrap_or(defaults.$field), )* }
            }

            /// Reads the file value of `key` if it is one of this section's; `Ok(false)` if not.
            pub(crate) fn read<'de, A: serde::de::MapAccess<'de>>(
                &mut self,
                key: &str,
                map: &mut A,
            ) -> Result<bool, A::Error> {
                $(
                    if key == $crate::config::setting::settings!(@key $field $($key)?)
                        $($( || key == $alias )*)?
                    {
                        let value = map.next_value::<$crate::config::setting::FileValue<$ty>>()?;
                        self.$field = Some(value.0);
                        return Ok(true);
                    }
                )*
                Ok(false)
            }

            /// `(key, value as a flag takes it)` of every setting; `None`: not given.
            #[cfg(test)]
            pub(crate) fn shown(&self) -> Vec<(&'static str, Option<Option<String>>)> {
                use $crate::config::setting::Value as _;
                vec![$((
                    $crate::config::setting::settings!(@key $field $($key)?),
                    self.$field.as_ref().map(|value| value.shown()),
                ),)*]
            }
        }

        impl clap::FromArgMatches for $layer {
            fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
                use $crate::config::setting::Value as _;
                Ok(Self {
                    $( $field: <$ty>::from_matches(
                        matches,
                        $crate::config::setting::settings!(@key $field $($key)?),
                    ), )*
                })
            }

            fn update_from_arg_matches(
                &mut self,
                matches: &clap::ArgMatches,
            ) -> Result<(), clap::Error> {
                let given = Self::from_arg_matches(matches)?;
                *self = given.or(std::mem::take(self));
                Ok(())
            }
        }

        impl clap::Args for $layer {
            fn augment_args(command: clap::Command) -> clap::Command {
                let defaults = $name::default();
                command $( .arg(
                    $crate::config::setting::arg::<$ty>(
                        $crate::config::setting::settings!(@key $field $($key)?),
                        $value_name,
                        $help,
                        $heading,
                        &defaults.$field,
                    )
                    $( .$modifier($($modifier_arg),*) )*
                ) )*
            }

            fn augment_args_for_update(command: clap::Command) -> clap::Command {
                Self::augment_args(command)
            }
        }
    };
    (@key $field:ident) => { stringify!($field) };
    (@key $field:ident $key:literal) => { $key };
}

pub(crate) use settings;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_durations_read_back() {
        for d in [Duration::from_secs(10), Duration::from_millis(1500)] {
            let text = d.shown().expect("shown");
            assert_eq!(text.parse::<DurationSetting>(), Ok(DurationSetting(d)));
        }
    }
}
