//! What every provider's HTTPS exchange shares: the client (rustls on ring, the webpki roots
//! plus `--push-ca-file`), reading an answer's body without trusting its size, and the two
//! outcomes every service spells the same way (429/5xx "try later, maybe after Retry-After",
//! and a network failure).

use std::path::Path;
use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Response, StatusCode};

use crate::PushError;

/// One attempt's bound; the dispatcher retries, so a slow provider costs one attempt, not a
/// stuck queue.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Error answers are a few hundred bytes; a misbehaving endpoint must not make us buffer more.
const MAX_ANSWER_BYTES: usize = 16 * 1024;

/// Which HTTP versions a client may speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Versions {
    /// HTTP/2 when ALPN offers it, else HTTP/1.1 (FCM, Web Push).
    Any,
    /// HTTP/2 only: APNs refuses anything else.
    Http2Only,
}

/// Builds the client a provider sends through. Redirects are not followed: a push endpoint
/// that redirects is misconfigured, and following one would let a Web Push registration
/// steer the broker to a host it was not allowed to name.
pub(crate) fn client(
    ca_file: Option<&Path>,
    versions: Versions,
) -> Result<reqwest::Client, PushError> {
    let mut builder = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("stompbox-push/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| PushError::Config(format!("reading {}: {e}", path.display())))?;
        let roots = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            PushError::Config(format!("{} is not a PEM bundle: {e}", path.display()))
        })?;
        if roots.is_empty() {
            return Err(PushError::Config(format!(
                "{} holds no certificate",
                path.display()
            )));
        }
        for root in roots {
            builder = builder.add_root_certificate(root);
        }
    }
    if versions == Versions::Http2Only {
        builder = builder.http2_prior_knowledge();
    }
    builder
        .build()
        .map_err(|e| PushError::Config(format!("building the push HTTP client: {e}")))
}

/// A request that never got an answer: worth another attempt unless the request itself
/// could not be built.
pub(crate) fn unanswered(service: &str, err: reqwest::Error) -> PushError {
    if err.is_builder() {
        return PushError::Rejected(format!("{service} request: {err}"));
    }
    PushError::Retry {
        reason: format!("{service} unreachable: {err}"),
        after: None,
    }
}

/// 429, 408 and every 5xx mean "later"; the others are each service's own business.
pub(crate) fn is_temporary(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
        || status.is_server_error()
}

/// The answer's status, `Retry-After` and (bounded) body text, read once.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: StatusCode,
    pub retry_after: Option<Duration>,
    pub body: String,
}

impl Answer {
    pub(crate) async fn read(mut response: Response) -> Answer {
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let mut body = Vec::new();
        // A body that breaks off mid-way still classifies by its status.
        while let Ok(Some(chunk)) = response.chunk().await {
            let room = MAX_ANSWER_BYTES.saturating_sub(body.len());
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if body.len() >= MAX_ANSWER_BYTES {
                break;
            }
        }
        Answer {
            status,
            retry_after,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    /// An answer as a test writes it.
    #[cfg(test)]
    pub(crate) fn for_tests(status: u16, body: &str) -> Answer {
        Answer {
            status: StatusCode::from_u16(status).expect("a valid status"),
            retry_after: None,
            body: body.into(),
        }
    }

    /// The "try later" outcome for a temporary status.
    pub(crate) fn retry(&self, service: &str) -> PushError {
        PushError::Retry {
            reason: format!(
                "{service} answered {}: {}",
                self.status,
                self.body_excerpt()
            ),
            after: self.retry_after,
        }
    }

    pub(crate) fn rejected(&self, service: &str) -> PushError {
        PushError::Rejected(format!(
            "{service} answered {}: {}",
            self.status,
            self.body_excerpt()
        ))
    }

    /// Enough of the body for a log line.
    pub(crate) fn body_excerpt(&self) -> &str {
        let mut end = self.body.len().min(300);
        while !self.body.is_char_boundary(end) {
            end -= 1;
        }
        &self.body[..end]
    }
}

/// `Retry-After` as delay-seconds or an HTTP date (RFC 9110 §10.2.3); a date in the past
/// means "now".
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn with_retry_after(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_str(value).expect("header value"),
        );
        headers
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(
            retry_after(&with_retry_after("120")),
            Some(Duration::from_secs(120))
        );
        let later = SystemTime::now() + Duration::from_secs(600);
        let delay = retry_after(&with_retry_after(&httpdate::fmt_http_date(later)))
            .expect("an HTTP date parses");
        assert!(delay > Duration::from_secs(590) && delay <= Duration::from_secs(600));
        let past = httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(60));
        assert_eq!(retry_after(&with_retry_after(&past)), Some(Duration::ZERO));
        assert_eq!(retry_after(&with_retry_after("soon")), None);
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }
}
