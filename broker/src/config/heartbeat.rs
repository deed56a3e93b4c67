//! Heart-beats and slow consumers: the server's heart-beat offer, how long a silent peer is
//! given, and what a full outbound queue does.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use clap::builder::{PossibleValuesParser, TypedValueParser, ValueParser};
use serde::{Deserialize, Deserializer};

use super::error::ConfigError;
use super::setting::{Value, settings};

settings! {
    /// The heart-beat settings as written; [`HeartbeatConfig`] is what sessions use.
    pub struct HeartbeatSettings, layer HeartbeatLayer, heading Some("Heart-beats and slow consumers");

    /// The server's own heart-beat figures, both directions; 0 turns a direction off. A
    /// client asking for faster beats gets them down to `heartbeat_min` (issue 17: a 10 s
    /// offer made every client that asked for 1 s wait 10 s), a slower ask wins as in STOMP.
    offer as "heartbeat": HeartbeatOffer = HeartbeatOffer {
            send: Duration::from_secs(1),
            recv: Duration::from_secs(1),
        },
        "SEND_MS,RECV_MS", "Server heart-beat offer in ms; 0 disables that direction; clients asking for faster beats get them down to --heartbeat-min";
    /// The fastest heart-beat a client can ask for, both directions: 1 s, as fast as any
    /// client library defaults to, while a ten-times-faster ask cannot make each of many
    /// thousands of idle sessions cost a timer wake-up and a write every 100 ms.
    min as "heartbeat_min": Duration = Duration::from_secs(1),
        "DURATION", "Floor under the heart-beat interval a client may ask for, both directions (an offer below it is its own floor)";
    /// See [`HeartbeatConfig::grace`].
    grace as "heartbeat_grace": f64 = 2.0,
        "F", "Multiplier on the inbound heart-beat interval before a silent peer is dropped, >= 1";
    /// What happens when a session's outbound queue is full.
    slow_consumer: SlowConsumerPolicy = SlowConsumerPolicy::Disconnect,
        "POLICY", "What to do when a session's outbound queue is full";
}

#[derive(Debug, Clone, Copy)]
pub struct HeartbeatConfig {
    /// The server's own figure for sending heart-beats (0 = never).
    pub send: Duration,
    /// The server's own figure for receiving heart-beats from clients (0 = never).
    pub recv: Duration,
    /// `heartbeat_min`: how far below its own figures the server honours a client's ask.
    pub min: Duration,
    /// Multiplier on the negotiated inbound interval before a silent peer is dropped. Browsers
    /// throttle timers of background tabs to once a minute or less, so 1.0 would drop them.
    pub grace: f64,
}

impl From<&HeartbeatSettings> for HeartbeatConfig {
    fn from(settings: &HeartbeatSettings) -> Self {
        Self {
            send: settings.offer.send,
            recv: settings.offer.recv,
            min: settings.min,
            grace: settings.grace,
        }
    }
}

impl Default for HeartbeatConfig {
    fn default() -> Self {
        Self::from(&HeartbeatSettings::default())
    }
}

impl HeartbeatConfig {
    /// Below 1 a peer that is on time is dropped.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let grace = self.grace;
        if !grace.is_finite() || grace < 1.0 {
            return Err(ConfigError::Invalid {
                key: "heartbeat_grace",
                reason: format!(
                    "{grace} must be a number >= 1 (below 1 drops peers that are on time)"
                ),
            });
        }
        Ok(())
    }
}

/// `SEND_MS,RECV_MS`, the server's heart-beat offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartbeatOffer {
    pub send: Duration,
    pub recv: Duration,
}

impl FromStr for HeartbeatOffer {
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

impl fmt::Display for HeartbeatOffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{},{}", self.send.as_millis(), self.recv.as_millis())
    }
}

impl Value for HeartbeatOffer {
    fn parser() -> ValueParser {
        ValueParser::new(|text: &str| text.parse::<HeartbeatOffer>())
    }

    fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        <String as Deserialize>::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }

    fn shown(&self) -> Option<String> {
        Some(self.to_string())
    }
}

/// What happens when a session's outbound queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SlowConsumerPolicy {
    /// Send ERROR `slow consumer` and close: the client learns and can resync.
    #[default]
    Disconnect,
    /// Drop the message for this session only (the session stays connected).
    Drop,
}

impl fmt::Display for SlowConsumerPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Disconnect => "disconnect",
            Self::Drop => "drop",
        })
    }
}

impl Value for SlowConsumerPolicy {
    fn parser() -> ValueParser {
        let parser = PossibleValuesParser::new(["disconnect", "drop"]).map(|s| match s.as_str() {
            "drop" => SlowConsumerPolicy::Drop,
            _ => SlowConsumerPolicy::Disconnect,
        });
        ValueParser::new(parser)
    }

    fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        <Self as Deserialize>::deserialize(deserializer)
    }

    fn shown(&self) -> Option<String> {
        Some(self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_takes_two_millisecond_values() {
        let hb = |s: &str| s.parse::<HeartbeatOffer>();
        assert_eq!(
            hb("0,2500"),
            Ok(HeartbeatOffer {
                send: Duration::ZERO,
                recv: Duration::from_millis(2500)
            })
        );
        assert_eq!(
            hb(" 10 , 20 "),
            Ok(HeartbeatOffer {
                send: Duration::from_millis(10),
                recv: Duration::from_millis(20)
            })
        );
        assert!(hb("5").is_err());
        assert!(hb("5,x").is_err());
        assert!(hb("1s,1s").is_err());
    }
}
