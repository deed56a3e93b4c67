//! The bounds the decoder enforces on untrusted input, checked while a frame is being scanned.

/// Upper bounds on what one peer may make the decoder buffer.
///
/// Every limit is enforced as bytes arrive, not after a whole frame is in memory, so a peer can
/// never make the codec hold more than about `max_frame_size` bytes of one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of one frame, from the first octet of its command through its NUL.
    pub max_frame_size: usize,
    /// Header lines in one frame (repeated names each count).
    pub max_headers: usize,
    /// Octets of one line (the command line or a header line), excluding its EOL.
    pub max_header_line: usize,
    /// Octets of one body, whether delimited by `content-length` or by NUL.
    pub max_body: usize,
}

impl Limits {
    /// 4 MiB: room for large messages while bounding per-connection memory.
    pub const DEFAULT_MAX_FRAME_SIZE: usize = 4 * 1024 * 1024;
    /// 64: real clients send a handful; this leaves room for application headers.
    pub const DEFAULT_MAX_HEADERS: usize = 64;
    /// 16 KiB: long enough for JWT bearer tokens in CONNECT, short enough to bound a line.
    pub const DEFAULT_MAX_HEADER_LINE: usize = 16 * 1024;
    /// 4 MiB: the same as the frame, so the body limit is the frame limit less its headers.
    pub const DEFAULT_MAX_BODY: usize = 4 * 1024 * 1024;
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame_size: Self::DEFAULT_MAX_FRAME_SIZE,
            max_headers: Self::DEFAULT_MAX_HEADERS,
            max_header_line: Self::DEFAULT_MAX_HEADER_LINE,
            max_body: Self::DEFAULT_MAX_BODY,
        }
    }
}

/// [`Limits`] as a codec keeps them: `u32`s, 16 B where `Limits` is 32, because every
/// connection holds a codec for its life (an idle connection's memory is a design target of
/// the broker). A limit past `u32::MAX` is kept as `u32::MAX` (4 GiB), which no frame reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PackedLimits([u32; 4]);

impl From<Limits> for PackedLimits {
    fn from(l: Limits) -> Self {
        let pack = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Self([
            pack(l.max_frame_size),
            pack(l.max_headers),
            pack(l.max_header_line),
            pack(l.max_body),
        ])
    }
}

impl From<PackedLimits> for Limits {
    fn from(PackedLimits(l): PackedLimits) -> Self {
        let unpack = |n: u32| usize::try_from(n).unwrap_or(usize::MAX);
        Self {
            max_frame_size: unpack(l[0]),
            max_headers: unpack(l[1]),
            max_header_line: unpack(l[2]),
            max_body: unpack(l[3]),
        }
    }
}

impl Default for PackedLimits {
    fn default() -> Self {
        Limits::default().into()
    }
}
