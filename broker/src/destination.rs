//! Destination names and what kind of routing each prefix means (see docs/protocol.md).

use crate::error::StompError;

/// Longest destination accepted; bounds what a subscription table key can cost.
pub const MAX_DESTINATION_LEN: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// `/topic/<name>`: fan-out; SUBSCRIBE may use `*`/`#` wildcards.
    Topic(String),
    /// `/queue/<name>`: competing consumers.
    Queue(String),
    /// `/user/queue/<name>` (user `None`, subscribe side) or `/user/<user>/queue/<name>`.
    User { user: Option<String>, name: String },
    /// `/temp-queue/<name>`: only meaningful in `reply-to`.
    TempQueue(String),
    /// `/reply-queue/<token>/<name>`: the rewritten form of a `/temp-queue` reply-to.
    ReplyQueue { token: String, name: String },
    /// `/app/...`: the built-in application (chat issue).
    App(String),
}

impl Destination {
    pub fn parse(raw: &str) -> Result<Self, StompError> {
        if raw.len() > MAX_DESTINATION_LEN {
            return Err(StompError::InvalidHeader(
                "destination",
                format!("longer than {MAX_DESTINATION_LEN} bytes"),
            ));
        }
        let unknown = || StompError::UnknownDestination(raw.to_string());
        let nonempty = |s: &str| {
            if s.is_empty() {
                Err(unknown())
            } else {
                Ok(s.to_string())
            }
        };
        if let Some(rest) = raw.strip_prefix("/topic/") {
            return Ok(Destination::Topic(nonempty(rest)?));
        }
        if let Some(rest) = raw.strip_prefix("/queue/") {
            return Ok(Destination::Queue(nonempty(rest)?));
        }
        if let Some(rest) = raw.strip_prefix("/temp-queue/") {
            return Ok(Destination::TempQueue(nonempty(rest)?));
        }
        if let Some(rest) = raw.strip_prefix("/reply-queue/") {
            let (token, name) = rest.split_once('/').ok_or_else(unknown)?;
            return Ok(Destination::ReplyQueue {
                token: nonempty(token)?,
                name: nonempty(name)?,
            });
        }
        if let Some(rest) = raw.strip_prefix("/app/") {
            return Ok(Destination::App(nonempty(rest)?));
        }
        if let Some(rest) = raw.strip_prefix("/user/") {
            if let Some(name) = rest.strip_prefix("queue/") {
                return Ok(Destination::User {
                    user: None,
                    name: nonempty(name)?,
                });
            }
            let (user, tail) = rest.split_once('/').ok_or_else(unknown)?;
            let name = tail.strip_prefix("queue/").ok_or_else(unknown)?;
            return Ok(Destination::User {
                user: Some(nonempty(user)?),
                name: nonempty(name)?,
            });
        }
        Err(unknown())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_map_to_kinds() {
        assert_eq!(
            Destination::parse("/topic/a.b").ok(),
            Some(Destination::Topic("a.b".into()))
        );
        assert_eq!(
            Destination::parse("/queue/jobs").ok(),
            Some(Destination::Queue("jobs".into()))
        );
        assert_eq!(
            Destination::parse("/user/queue/inbox").ok(),
            Some(Destination::User {
                user: None,
                name: "inbox".into()
            })
        );
        assert_eq!(
            Destination::parse("/user/bob/queue/inbox").ok(),
            Some(Destination::User {
                user: Some("bob".into()),
                name: "inbox".into()
            })
        );
        assert_eq!(
            Destination::parse("/reply-queue/tok/r1").ok(),
            Some(Destination::ReplyQueue {
                token: "tok".into(),
                name: "r1".into()
            })
        );
    }

    #[test]
    fn unknown_and_empty_names_are_refused() {
        for bad in [
            "/foo/x",
            "/topic/",
            "queue/x",
            "/user/bob/topic/x",
            "/user/bob",
            "",
        ] {
            assert!(Destination::parse(bad).is_err(), "{bad}");
        }
    }
}
