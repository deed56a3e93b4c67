//! Building the client frames tests send, and reading the server frames they check.

use stomp_codec::{Command, Frame};

/// SEND with `destination`, `content-length` and `body`.
pub fn send(destination: &str, body: impl AsRef<[u8]>) -> Frame {
    let body = body.as_ref().to_vec();
    Frame::new(Command::Send)
        .header("destination", destination)
        .header("content-length", body.len().to_string())
        .with_body(body)
}

/// SUBSCRIBE with `id` and `destination` (ack mode left to the default, `auto`).
pub fn subscribe(id: &str, destination: &str) -> Frame {
    Frame::new(Command::Subscribe)
        .header("id", id)
        .header("destination", destination)
}

/// Convenience accessors for received frames; panics name the frame, which is what a failing
/// test needs to show.
pub trait FrameExt {
    /// The first value of header `name`; panics when absent.
    fn value(&self, name: &str) -> &str;
    /// The first value of header `name`, if present.
    fn opt(&self, name: &str) -> Option<&str>;
    /// The body as (lossy) UTF-8.
    fn text(&self) -> String;
    /// Short human description for assertion messages.
    fn describe(&self) -> String;
}

impl FrameExt for Frame {
    fn value(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("header {name:?} missing from {}", self.describe()))
    }

    fn opt(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn describe(&self) -> String {
        let headers: Vec<String> = self
            .headers
            .iter()
            .map(|(n, v)| format!("{n}:{v:?}"))
            .collect();
        let mut body = self.text();
        if body.len() > 200 {
            body = format!(
                "{}... ({} bytes)",
                &body[..body.floor_char_boundary(200)],
                self.body.len()
            );
        }
        format!("{} [{}] body {body:?}", self.command, headers.join(", "))
    }
}
