//! How a notification's collapse id fits each service's limit on it: APNs takes at most 64
//! bytes in `apns-collapse-id`, Web Push at most 32 URL-safe base64 characters in `Topic`.
//! An id that does not fit is replaced by a digest of it, so the same conversation still
//! maps to the same key and two conversations (almost surely) do not.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// `id` itself when it is at most `max` bytes and every byte passes `allowed`; else the
/// first `max` characters of its SHA-256 in URL-safe base64.
pub(crate) fn fit(id: &str, max: usize, allowed: impl Fn(u8) -> bool) -> String {
    if id.len() <= max && id.bytes().all(allowed) {
        return id.to_owned();
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, id.as_bytes());
    let mut key = URL_SAFE_NO_PAD.encode(digest.as_ref());
    key.truncate(max);
    key
}

/// The URL-safe base64 alphabet RFC 8030 §5.4 allows in a `Topic`.
pub(crate) fn base64url_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_'
}

/// Anything printable fits an HTTP header value.
pub(crate) fn header_byte(byte: u8) -> bool {
    (0x20..0x7f).contains(&byte)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_ids_stay_and_long_or_odd_ones_become_a_stable_digest() {
        assert_eq!(fit("conv-42", 32, base64url_byte), "conv-42");
        let odd = fit("team:general", 32, base64url_byte);
        assert_eq!(odd.len(), 32);
        assert!(odd.bytes().all(base64url_byte));
        assert_eq!(odd, fit("team:general", 32, base64url_byte));
        assert_ne!(odd, fit("team:random", 32, base64url_byte));
        let long = "x".repeat(65);
        assert_eq!(fit(&long, 64, header_byte).len(), 43);
        assert_eq!(fit("team:general", 64, header_byte), "team:general");
    }
}
