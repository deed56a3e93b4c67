//! A topic history rule as settings spell it: `/topic/<pattern>=<messages>/<bytes>/<age>`, e.g.
//! `/topic/conversation.*=1000/1048576/1h`. The `topic_history` setting is a list of them; the
//! first rule whose pattern matches a topic gives that topic's history bounds.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::setting::DurationSetting;

/// How much recent history topics matching `pattern` keep (RabbitMQ-style `*`/`#` wildcards,
/// as subscriptions use). All three bounds apply; a rule with 0 messages keeps none, which
/// switches history off for its topics (an earlier rule can so exempt some of a later one's).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct HistoryRule {
    /// The topic name pattern, without `/topic/`.
    pub pattern: String,
    pub max_messages: usize,
    pub max_bytes: usize,
    pub max_age: Duration,
}

impl HistoryRule {
    /// Chat rooms: a reconnect within the hour or 1,000 messages resumes without a reload.
    pub fn conversations() -> Vec<HistoryRule> {
        vec![
            "/topic/conversation.*=1000/1048576/1h"
                .parse()
                .expect("a valid literal"),
        ]
    }
}

impl FromStr for HistoryRule {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let usage = || {
            format!(
                "{text:?} is not a topic history rule like /topic/conversation.*=1000/1048576/1h \
                 (pattern=messages/bytes/age)"
            )
        };
        let (pattern, bounds) = text.trim().split_once('=').ok_or_else(usage)?;
        let pattern = pattern.trim().strip_prefix("/topic/").ok_or_else(usage)?;
        let mut parts = bounds.split('/').map(str::trim);
        let (Some(messages), Some(bytes), Some(age), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(usage());
        };
        if pattern.is_empty() {
            return Err(usage());
        }
        Ok(HistoryRule {
            pattern: pattern.to_string(),
            max_messages: messages.parse().map_err(|_| usage())?,
            max_bytes: bytes.parse().map_err(|_| usage())?,
            max_age: age.parse::<DurationSetting>().map_err(|_| usage())?.0,
        })
    }
}

impl TryFrom<String> for HistoryRule {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl fmt::Display for HistoryRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "/topic/{}={}/{}/{}",
            self.pattern,
            self.max_messages,
            self.max_bytes,
            humantime::format_duration(self.max_age)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_and_show_as_written() {
        let rule: HistoryRule = "/topic/prices.#=50/4096/30s".parse().expect("rule");
        assert_eq!(rule.pattern, "prices.#");
        assert_eq!(rule.max_messages, 50);
        assert_eq!(rule.max_bytes, 4096);
        assert_eq!(rule.max_age, Duration::from_secs(30));
        assert_eq!(rule.to_string(), "/topic/prices.#=50/4096/30s");
        for bad in [
            "prices.#=1/2/3s",
            "/topic/a=1/2",
            "/topic/a=x/2/3s",
            "/topic/=1/2/3s",
        ] {
            assert!(bad.parse::<HistoryRule>().is_err(), "{bad}");
        }
    }
}
