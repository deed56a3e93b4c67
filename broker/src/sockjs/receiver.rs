//! A receiver: the HTTP response that carries a SockJS session's frames to the client, in one
//! of the transports' wrappings. A polling receiver (`xhr`, `jsonp`) ends after one frame; a
//! streaming one (`xhr_streaming`, `eventsource`, `htmlfile`) keeps going until it has carried
//! the streaming limit, after which the client opens the next. An idle receiver gets `h` every
//! heart-beat interval. The receiver holds the session's [`Attached`] slot for its life. When
//! the broker begins to shut down, a receiver closes the session (`c[3000,...]`) and ends at
//! once: shutdown waits for HTTP responses in progress before it closes sessions, so one that
//! waited for its session to close would hold shutdown up.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use super::frame::{Close, Frame, Quoted};
use super::session::Attached;

/// How a transport wraps each frame on the wire.
#[derive(Debug, Clone)]
pub enum Wrapping {
    /// `xhr`, `xhr_streaming`: the frame and a newline.
    Xhr,
    /// `eventsource`: `data: frame\r\n\r\n`.
    EventSource,
    /// `htmlfile`: a `<script>` calling the callback with the frame as a string.
    HtmlFile,
    /// `jsonp`: a call of the callback with the frame as a string.
    Jsonp(String),
}

impl Wrapping {
    pub fn wrap(&self, frame: &Frame<'_>) -> String {
        let frame = frame.to_string();
        match self {
            Wrapping::Xhr => format!("{frame}\n"),
            Wrapping::EventSource => format!("data: {frame}\r\n\r\n"),
            Wrapping::HtmlFile => format!("<script>\np({});\n</script>\r\n", Quoted(&frame)),
            Wrapping::Jsonp(callback) => format!("/**/{callback}({});\r\n", Quoted(&frame)),
        }
    }
}

/// How long a receiver lives.
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    Polling,
    /// Until this many bytes were sent.
    Streaming(usize),
}

/// A receiver's response body: `first` (the prelude, and `o` for a new session) at once, then
/// the session's frames.
pub fn body(
    attached: Attached,
    wrapping: Wrapping,
    mode: Mode,
    pace: Pace,
    first: String,
    opened: bool,
) -> Body {
    let state = Receiver {
        attached,
        wrapping,
        mode,
        pace,
        sent: 0,
        first: Some(first),
        // A polling request that opened the session carries only `o`.
        done: opened && matches!(mode, Mode::Polling),
    };
    Body::from_stream(futures_util::stream::unfold(state, Receiver::next))
}

/// A body that is only `first`: the answer to a receiver refused because another is open.
pub fn refused(wrapping: &Wrapping, prelude: String) -> Body {
    Body::from(prelude + &wrapping.wrap(&Frame::Close(Close::AnotherConnection)))
}

/// When an idle receiver speaks, and when it stops.
pub struct Pace {
    pub heartbeat: Duration,
    /// The broker's shutdown.
    pub stopping: CancellationToken,
}

struct Receiver {
    attached: Attached,
    wrapping: Wrapping,
    mode: Mode,
    pace: Pace,
    sent: usize,
    first: Option<String>,
    done: bool,
}

impl Receiver {
    async fn next(mut self) -> Option<(Result<Bytes, Infallible>, Self)> {
        if let Some(first) = self.first.take() {
            return Some((Ok(Bytes::from(first)), self));
        }
        if self.done {
            return None;
        }
        let chunk = self.wait().await;
        self.sent += chunk.len();
        self.done |= match self.mode {
            Mode::Polling => true,
            Mode::Streaming(limit) => self.sent >= limit,
        };
        Some((Ok(Bytes::from(chunk)), self))
    }

    /// The next chunk: queued messages (and the close frame once the session ended), or `h`
    /// after a heart-beat interval of nothing.
    async fn wait(&mut self) -> String {
        let link = &self.attached.session().link;
        let budget = match self.mode {
            Mode::Polling => usize::MAX,
            Mode::Streaming(limit) => limit.saturating_sub(self.sent),
        };
        let heartbeat = tokio::time::sleep(self.pace.heartbeat);
        tokio::pin!(heartbeat);
        loop {
            let changed = link.changed();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let taken = link.take(budget);
            let mut chunk = String::new();
            if !taken.messages.is_empty() {
                chunk += &self.wrapping.wrap(&Frame::Messages(&taken.messages));
            }
            if taken.closed {
                chunk += &self.wrapping.wrap(&Frame::Close(Close::GoAway));
                self.done = true;
            }
            if !chunk.is_empty() {
                return chunk;
            }
            tokio::select! {
                () = &mut changed => {}
                () = &mut heartbeat => return self.wrapping.wrap(&Frame::Heartbeat),
                () = self.pace.stopping.cancelled() => {
                    self.done = true;
                    return self.wrapping.wrap(&Frame::Close(Close::GoAway));
                }
            }
        }
    }
}
