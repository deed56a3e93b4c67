//! Frame is data, command is meaning: every client frame becomes a typed [`Request`] here, in
//! one place, so the session never digs in raw headers.

use stomp_codec::{Command, Frame, Headers, Version};

use crate::error::StompError;
use crate::router::history::Position;

/// How a subscription acknowledges (STOMP 1.2 "SUBSCRIBE ack Header").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckMode {
    Auto,
    /// Cumulative: an ACK covers every earlier message of the subscription.
    Client,
    ClientIndividual,
}

impl AckMode {
    pub fn tracks_acks(self) -> bool {
        self != AckMode::Auto
    }
}

/// How an ACK/NACK names its message, by version: 1.2 `id`; 1.1 `message-id` + `subscription`;
/// 1.0 `message-id`. Real clients mix these, so all are accepted in every version.
#[derive(Debug, Clone, Default)]
pub struct AckRef {
    pub id: Option<String>,
    pub message_id: Option<String>,
    pub subscription: Option<String>,
}

impl AckRef {
    /// Best name of the message for an error text.
    pub fn describe(&self) -> String {
        self.id
            .clone()
            .or_else(|| self.message_id.clone())
            .unwrap_or_default()
    }
}

#[derive(Debug)]
pub struct Connect {
    pub accept_version: Option<String>,
    pub login: Option<String>,
    pub passcode: Option<String>,
    /// Client's (can send every cx ms, wants every cy ms).
    pub heart_beat: (u64, u64),
}

/// A SEND: where to, and what (headers as sent, `receipt` removed).
#[derive(Debug)]
pub struct Publish {
    pub destination: String,
    pub transaction: Option<String>,
    pub headers: Headers,
    pub body: bytes::Bytes,
}

#[derive(Debug)]
pub enum ClientCommand {
    Connect(Connect),
    Send(Publish),
    Subscribe {
        id: String,
        destination: String,
        ack: AckMode,
        prefetch: u32,
        /// `resume-epoch` and `resume-offset`: where a resumable `/topic` subscription was.
        resume: Option<Position>,
    },
    Unsubscribe {
        id: String,
    },
    Ack {
        target: AckRef,
        transaction: Option<String>,
    },
    Nack {
        target: AckRef,
        transaction: Option<String>,
    },
    Begin {
        transaction: String,
    },
    Commit {
        transaction: String,
    },
    Abort {
        transaction: String,
    },
    Disconnect,
}

/// A client frame with its meaning and its `receipt`, if any.
#[derive(Debug)]
pub struct Request {
    pub command: ClientCommand,
    pub receipt: Option<String>,
}

fn required(
    headers: &Headers,
    frame: &'static str,
    name: &'static str,
) -> Result<String, StompError> {
    match headers.get(name) {
        Some(v) if !v.is_empty() => Ok(v.to_string()),
        _ => Err(StompError::MissingHeader(frame, name)),
    }
}

fn optional(headers: &Headers, name: &str) -> Option<String> {
    headers.get(name).map(str::to_string)
}

/// Parses `heart-beat: cx,cy`.
pub fn parse_heart_beat(value: &str) -> Result<(u64, u64), StompError> {
    let bad = || StompError::InvalidHeader("heart-beat", format!("{value:?} is not 'cx,cy'"));
    let (x, y) = value.split_once(',').ok_or_else(bad)?;
    let x = x.trim().parse().map_err(|_| bad())?;
    let y = y.trim().parse().map_err(|_| bad())?;
    Ok((x, y))
}

impl Request {
    /// Interprets a decoded frame for a session speaking `version`.
    pub fn from_frame(frame: Frame, version: Version) -> Result<Self, StompError> {
        let Frame {
            command,
            mut headers,
            body,
        } = frame;
        let receipt = optional(&headers, "receipt");
        let name = command.as_str();
        let command = match command {
            Command::Connect | Command::Stomp => ClientCommand::Connect(Connect {
                accept_version: optional(&headers, "accept-version"),
                login: optional(&headers, "login"),
                passcode: optional(&headers, "passcode"),
                heart_beat: match headers.get("heart-beat") {
                    Some(v) => parse_heart_beat(v)?,
                    None => (0, 0),
                },
            }),
            Command::Send => {
                let destination = required(&headers, "SEND", "destination")?;
                let transaction = optional(&headers, "transaction");
                if let Some(len) = headers.get("content-length") {
                    // The codec already framed the body by it; only a lie would differ.
                    if len.trim().parse::<usize>().ok() != Some(body.len()) {
                        return Err(StompError::Malformed(format!(
                            "content-length {len} does not match the body"
                        )));
                    }
                }
                headers.remove("receipt");
                ClientCommand::Send(Publish {
                    destination,
                    transaction,
                    headers,
                    body,
                })
            }
            Command::Subscribe => {
                let destination = required(&headers, "SUBSCRIBE", "destination")?;
                // 1.0 made `id` optional; the destination then names the subscription.
                let id = match (version, headers.get("id")) {
                    (_, Some(id)) if !id.is_empty() => id.to_string(),
                    (Version::V1_0, _) => destination.clone(),
                    _ => return Err(StompError::MissingHeader("SUBSCRIBE", "id")),
                };
                let ack = match headers.get("ack").unwrap_or("auto") {
                    "auto" => AckMode::Auto,
                    "client" => AckMode::Client,
                    "client-individual" => AckMode::ClientIndividual,
                    other => {
                        return Err(StompError::InvalidHeader(
                            "ack",
                            format!("{other:?}; use auto, client or client-individual"),
                        ));
                    }
                };
                let prefetch = match headers.get("prefetch-count") {
                    None => 0,
                    Some(v) => v.trim().parse().map_err(|_| {
                        StompError::InvalidHeader("prefetch-count", format!("{v:?}"))
                    })?,
                };
                let resume = match (headers.get("resume-epoch"), headers.get("resume-offset")) {
                    (None, None) => None,
                    (Some(epoch), Some(offset)) => Some(Position {
                        epoch: epoch.to_string(),
                        offset: offset.trim().parse().map_err(|_| {
                            StompError::InvalidHeader("resume-offset", format!("{offset:?}"))
                        })?,
                    }),
                    (None, Some(_)) => {
                        return Err(StompError::MissingHeader("SUBSCRIBE", "resume-epoch"));
                    }
                    (Some(_), None) => {
                        return Err(StompError::MissingHeader("SUBSCRIBE", "resume-offset"));
                    }
                };
                ClientCommand::Subscribe {
                    id,
                    destination,
                    ack,
                    prefetch,
                    resume,
                }
            }
            Command::Unsubscribe => {
                let id = match (optional(&headers, "id"), version) {
                    (Some(id), _) => id,
                    (None, Version::V1_0) => required(&headers, "UNSUBSCRIBE", "destination")?,
                    (None, _) => return Err(StompError::MissingHeader("UNSUBSCRIBE", "id")),
                };
                ClientCommand::Unsubscribe { id }
            }
            Command::Ack | Command::Nack => {
                let target = AckRef {
                    id: optional(&headers, "id"),
                    message_id: optional(&headers, "message-id"),
                    subscription: optional(&headers, "subscription"),
                };
                if target.id.is_none() && target.message_id.is_none() {
                    let frame = if command == Command::Ack {
                        "ACK"
                    } else {
                        "NACK"
                    };
                    return Err(StompError::MissingHeader(frame, "id"));
                }
                let transaction = optional(&headers, "transaction");
                if command == Command::Ack {
                    ClientCommand::Ack {
                        target,
                        transaction,
                    }
                } else {
                    ClientCommand::Nack {
                        target,
                        transaction,
                    }
                }
            }
            Command::Begin => ClientCommand::Begin {
                transaction: required(&headers, "BEGIN", "transaction")?,
            },
            Command::Commit => ClientCommand::Commit {
                transaction: required(&headers, "COMMIT", "transaction")?,
            },
            Command::Abort => ClientCommand::Abort {
                transaction: required(&headers, "ABORT", "transaction")?,
            },
            Command::Disconnect => ClientCommand::Disconnect,
            Command::Connected | Command::Message | Command::Receipt | Command::Error => {
                return Err(StompError::UnknownCommand(name.to_string()));
            }
        };
        Ok(Request { command, receipt })
    }
}
