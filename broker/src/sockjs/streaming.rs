//! The streaming transports: `xhr_streaming`, `eventsource` and `htmlfile`. One response
//! carries frames as they come until it has carried the streaming limit; the client then
//! opens the next. Each starts with a prelude some browsers need before they hand the
//! response to the page.

use std::collections::HashMap;

use super::polling::callback;
use super::receiver::{Mode, Wrapping};
use super::refused::Refused;
use super::server::{Receive, Receiving};
use crate::config::Config;

/// Bytes of `h` before the first frame of `xhr_streaming`: older browsers deliver nothing of a
/// streaming XHR before 2 KiB arrived.
const XHR_PRELUDE: usize = 2048;
/// The `htmlfile` page is padded to this size, for the same reason.
const HTMLFILE_PRELUDE: usize = 1024;

pub struct XhrStreaming;

impl Receiving for XhrStreaming {
    fn receive(config: &Config, _: &HashMap<String, String>) -> Result<Receive, Refused> {
        Ok(Receive {
            wrapping: Wrapping::Xhr,
            mode: Mode::Streaming(config.sockjs.stream_limit),
            prelude: "h".repeat(XHR_PRELUDE) + "\n",
            content_type: "application/javascript;charset=UTF-8",
        })
    }
}

pub struct EventSource;

impl Receiving for EventSource {
    fn receive(config: &Config, _: &HashMap<String, String>) -> Result<Receive, Refused> {
        Ok(Receive {
            wrapping: Wrapping::EventSource,
            mode: Mode::Streaming(config.sockjs.stream_limit),
            prelude: "\r\n".to_owned(),
            content_type: "text/event-stream;charset=UTF-8",
        })
    }
}

pub struct HtmlFile;

impl Receiving for HtmlFile {
    fn receive(config: &Config, query: &HashMap<String, String>) -> Result<Receive, Refused> {
        let callback = callback(query)?;
        let mut prelude = format!(
            "<!doctype html>\n<html><head>\n  <meta http-equiv=\"X-UA-Compatible\" content=\"IE=edge\" />\n  \
             <meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-8\" />\n</head><body>\
             <h2>Don't panic!</h2>\n  <script>\n    document.domain = document.domain;\n    \
             var c = parent.{callback};\n    c.start();\n    function p(d) {{c.message(d);}};\n    \
             window.onload = function() {{c.stop();}};\n  </script>"
        );
        let padding = HTMLFILE_PRELUDE.saturating_sub(prelude.len());
        prelude.push_str(&" ".repeat(padding));
        prelude.push_str("\r\n");
        Ok(Receive {
            wrapping: Wrapping::HtmlFile,
            mode: Mode::Streaming(config.sockjs.stream_limit),
            prelude,
            content_type: "text/html;charset=UTF-8",
        })
    }
}
