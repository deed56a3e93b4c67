//! A pure STOMP 1.0/1.1/1.2 frame codec: bytes in, [`Frame`]s out, and back.
//!
//! No sockets and no runtime: the codec is a `tokio_util::codec::{Decoder, Encoder}` over
//! `BytesMut`, usable from any transport (TCP stream, WebSocket messages, a fuzzer).
//!
//! Grammar (STOMP 1.2):
//! ```text
//! frame   = command EOL *(header EOL) EOL *OCTET NUL *(EOL)
//! EOL     = [CR] LF
//! header  = name ":" value          ; escaped per version, except CONNECT/STOMP/CONNECTED
//! ```
//! Every limit is checked while scanning, before the bytes of a frame pile up.

mod error;
mod frame;

pub use error::CodecError;
pub use frame::{Command, Frame, Headers, Item, Version};
