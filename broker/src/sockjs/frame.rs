//! SockJS framing: what the server sends (`o`, `h`, `a[...]`, `c[code,"reason"]`) and what a
//! client sends (a JSON array of strings, or over WebSocket a single string too).

use std::fmt;
use std::str::FromStr;

/// One frame from server to client.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    Open,
    Heartbeat,
    Messages(&'a [String]),
    Close(Close),
}

/// Why a SockJS session closed, as the protocol numbers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Close {
    /// The server ended the session (the STOMP session closed).
    GoAway,
    /// A second receiver tried to attach while one was open.
    AnotherConnection,
}

impl Close {
    fn code(self) -> u16 {
        match self {
            Close::GoAway => 3000,
            Close::AnotherConnection => 2010,
        }
    }

    fn reason(self) -> &'static str {
        match self {
            Close::GoAway => "Go away!",
            Close::AnotherConnection => "Another connection still open",
        }
    }
}

impl fmt::Display for Frame<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Frame::Open => f.write_str("o"),
            Frame::Heartbeat => f.write_str("h"),
            Frame::Messages(messages) => {
                f.write_str("a[")?;
                for (i, message) in messages.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{}", Quoted(message))?;
                }
                f.write_str("]")
            }
            Frame::Close(close) => write!(f, "c[{},\"{}\"]", close.code(), close.reason()),
        }
    }
}

/// A string as a JSON string literal, with the characters SockJS servers escape besides JSON's
/// own (Spring's set): some browsers and proxies mangle or drop them raw, and U+2028/U+2029
/// end a line inside a JavaScript string in the `htmlfile` and `jsonp` transports.
pub struct Quoted<'a>(pub &'a str);

fn escaped(c: char) -> bool {
    matches!(c, '\u{200c}'..='\u{200f}' | '\u{2028}'..='\u{202f}' | '\u{2060}'..='\u{206f}' | '\u{fff0}'..='\u{ffff}')
}

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let json = serde_json::Value::from(self.0).to_string();
        if !json.chars().any(escaped) {
            return f.write_str(&json);
        }
        for c in json.chars() {
            if escaped(c) {
                write!(f, "\\u{:04x}", u32::from(c))?;
            } else {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

/// What a client sent: the messages of one `xhr_send`/`jsonp_send` body or WebSocket message.
#[derive(Debug, PartialEq, Eq)]
pub struct Payload(pub Vec<String>);

/// A client message that is not a JSON array of strings (nor a JSON string).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("Broken JSON encoding.")]
pub struct BrokenJson;

impl FromStr for Payload {
    type Err = BrokenJson;

    fn from_str(text: &str) -> Result<Self, BrokenJson> {
        let text = text.trim_start();
        if text.starts_with('[') {
            serde_json::from_str(text)
                .map(Payload)
                .map_err(|_| BrokenJson)
        } else {
            serde_json::from_str::<String>(text)
                .map(|message| Payload(vec![message]))
                .map_err(|_| BrokenJson)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_render_as_the_protocol_spells_them() {
        assert_eq!(Frame::Open.to_string(), "o");
        assert_eq!(Frame::Heartbeat.to_string(), "h");
        let messages = ["a\"b\n".to_owned(), "\u{2028}\0".to_owned()];
        assert_eq!(
            Frame::Messages(&messages).to_string(),
            r#"a["a\"b\n","\u2028\u0000"]"#
        );
        assert_eq!(
            Frame::Close(Close::GoAway).to_string(),
            r#"c[3000,"Go away!"]"#
        );
    }

    #[test]
    fn payload_is_an_array_of_strings_or_one_string() {
        assert_eq!(
            "[\"x\",\"y\"]".parse(),
            Ok(Payload(vec!["x".into(), "y".into()]))
        );
        assert_eq!("\"x\"".parse(), Ok(Payload(vec!["x".into()])));
        assert_eq!("[\"x\"".parse::<Payload>(), Err(BrokenJson));
        assert_eq!("[1]".parse::<Payload>(), Err(BrokenJson));
        assert_eq!("".parse::<Payload>(), Err(BrokenJson));
    }
}
