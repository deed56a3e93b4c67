//! Everything that can be wrong with bytes from a peer, each limit its own variant so the
//! broker can name it in an ERROR frame.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum CodecError {
    #[error("frame exceeds the maximum size of {limit} bytes")]
    FrameTooLarge { limit: usize },
    #[error("frame has more than {limit} headers")]
    TooManyHeaders { limit: usize },
    #[error("header line exceeds {limit} bytes")]
    HeaderLineTooLong { limit: usize },
    #[error("body exceeds the maximum size of {limit} bytes")]
    BodyTooLarge { limit: usize },
    #[error("unknown command {0:?}")]
    UnknownCommand(String),
    #[error("unsupported protocol version {0:?}")]
    UnknownVersion(String),
    #[error("header line without ':' separator")]
    MalformedHeader,
    #[error("undefined escape sequence \\{0} in header")]
    InvalidEscape(char),
    #[error("headers are not valid UTF-8")]
    InvalidUtf8,
    #[error("invalid content-length {0:?}")]
    InvalidContentLength(String),
    #[error("body of declared content-length is not followed by a NUL octet")]
    MissingNul,
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}
