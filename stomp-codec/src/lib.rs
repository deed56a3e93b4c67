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
//! name    = 1*<any octet but LF, ":">   value = *<any octet but LF>
//! ```
//! - The body is exactly `content-length` octets (first occurrence) followed by NUL, or, with
//!   no `content-length`, everything up to the first NUL.
//! - Each EOL between frames (including those after a NUL) is decoded as [`Item::HeartBeat`].
//! - Repeated headers are all kept; [`Headers::get`] returns the first.
//! - Header text must be UTF-8; escapes are `\r \n \c \\` in 1.2, `\n \c \\` in 1.1, none in
//!   1.0, and any other escape is an error.
//!
//! Every limit in [`Limits`] is checked while scanning, before the bytes of a frame pile up.
//!
//! Layout: `scan` finds frame boundaries resumably and enforces limits, `parse` reads
//! the lines of a bounded frame with nom, `escape` maps header text per version, `encode`
//! writes frames, `codec` ties them into [`StompCodec`].

mod codec;
mod encode;
mod error;
mod escape;
mod frame;
#[doc(hidden)]
pub mod fuzzing;
mod limits;
mod parse;
mod scan;

pub use codec::StompCodec;
pub use encode::{HEARTBEAT, encode_frame, encode_header};
pub use error::CodecError;
pub use frame::{Command, Frame, Headers, Item, Version};
pub use limits::Limits;
