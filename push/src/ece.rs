//! Web Push message encryption (RFC 8291) in the `aes128gcm` content coding (RFC 8188): an
//! ephemeral P-256 key agreed with the subscription's `p256dh`, mixed with its `auth` secret
//! through HKDF-SHA256 into a content key and nonce, one AES-128-GCM record. Only the glue
//! is here; the primitives are p256's ECDH and ring's HKDF and AEAD.

use p256::elliptic_curve::sec1::ToSec1Point;
use p256::{PublicKey, SecretKey};
use ring::aead::{AES_128_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::hkdf;
use ring::rand::{SecureRandom, SystemRandom};

use crate::PushError;

/// The record size we declare; one record carries the whole message.
const RECORD_SIZE: u32 = 4096;
const TAG_BYTES: usize = 16;
/// salt (16) + rs (4) + idlen (1) + keyid (65-byte uncompressed point).
const HEADER_BYTES: usize = 16 + 4 + 1 + 65;
/// Push services accept at most 4096 bytes of body (RFC 8030 §7.2 leaves it to them; all
/// major ones use 4096): what is left after the header, the tag and the delimiter.
pub(crate) const MAX_PLAINTEXT: usize = 4096 - HEADER_BYTES - TAG_BYTES - 1;

/// The recipient, as its subscription's keys give it.
pub(crate) struct Recipient {
    pub public: PublicKey,
    pub auth: [u8; 16],
}

/// Encrypts `plaintext` for `to` with a fresh ephemeral key and salt.
pub(crate) fn encrypt(to: &Recipient, plaintext: &[u8]) -> Result<Vec<u8>, PushError> {
    let rng = SystemRandom::new();
    let mut salt = [0u8; 16];
    rng.fill(&mut salt)
        .map_err(|_| failure("no randomness for the salt"))?;
    let ephemeral = loop {
        let mut bytes = [0u8; 32];
        rng.fill(&mut bytes)
            .map_err(|_| failure("no randomness for the key"))?;
        // A 32-byte string is a valid scalar except with negligible probability.
        if let Ok(key) = SecretKey::from_slice(&bytes) {
            break key;
        }
    };
    encrypt_with(to, plaintext, &ephemeral, salt)
}

/// The deterministic core, with the ephemeral key and salt given (RFC 8291 §5's example
/// pins both).
fn encrypt_with(
    to: &Recipient,
    plaintext: &[u8],
    ephemeral: &SecretKey,
    salt: [u8; 16],
) -> Result<Vec<u8>, PushError> {
    if plaintext.len() > MAX_PLAINTEXT {
        return Err(PushError::Rejected(format!(
            "a Web Push payload of {} bytes exceeds {MAX_PLAINTEXT}",
            plaintext.len()
        )));
    }
    let ua_public = to.public.to_sec1_point(false);
    let as_public = ephemeral.public_key().to_sec1_point(false);
    let shared = p256::ecdh::diffie_hellman(ephemeral.to_nonzero_scalar(), to.public.as_affine());

    // RFC 8291 §3.4: IKM = HKDF(auth, ecdh_secret, "WebPush: info" 0x00 ua_public as_public).
    let key_info = [
        b"WebPush: info\0".as_slice(),
        ua_public.as_bytes(),
        as_public.as_bytes(),
    ];
    let mut ikm = [0u8; 32];
    expand(&to.auth, shared.raw_secret_bytes(), &key_info, &mut ikm)?;
    // RFC 8188 §2.2/2.3: the content key and nonce from the salt.
    let mut cek = [0u8; 16];
    expand(&salt, &ikm, &[b"Content-Encoding: aes128gcm\0"], &mut cek)?;
    let mut nonce = [0u8; 12];
    expand(&salt, &ikm, &[b"Content-Encoding: nonce\0"], &mut nonce)?;

    let mut record = Vec::with_capacity(plaintext.len() + 1 + TAG_BYTES);
    record.extend_from_slice(plaintext);
    record.push(2); // the last (and only) record's delimiter
    let key =
        LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &cek).map_err(|_| failure("content key"))?);
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::empty(),
        &mut record,
    )
    .map_err(|_| failure("sealing the record"))?;

    let mut body = Vec::with_capacity(HEADER_BYTES + record.len());
    body.extend_from_slice(&salt);
    body.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    body.push(65);
    body.extend_from_slice(as_public.as_bytes());
    body.extend_from_slice(&record);
    Ok(body)
}

/// HKDF-SHA256 extract with `salt` over `ikm`, then expand with `info` into `out`.
fn expand(salt: &[u8], ikm: &[u8], info: &[&[u8]], out: &mut [u8]) -> Result<(), PushError> {
    struct Len(usize);
    impl hkdf::KeyType for Len {
        fn len(&self) -> usize {
            self.0
        }
    }
    hkdf::Salt::new(hkdf::HKDF_SHA256, salt)
        .extract(ikm)
        .expand(info, Len(out.len()))
        .and_then(|okm| okm.fill(out))
        .map_err(|_| failure("HKDF"))
}

fn failure(what: &str) -> PushError {
    PushError::Rejected(format!("Web Push encryption failed: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn b64(text: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(text).expect("base64url")
    }

    /// RFC 8291 §5: the worked example, byte for byte.
    #[test]
    fn reproduces_the_rfc_8291_example() {
        let to = Recipient {
            public: PublicKey::from_sec1_bytes(&b64(
                "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",
            ))
            .expect("ua_public"),
            auth: b64("BTBZMqHH6r4Tts7J_aSIgg").try_into().expect("16 bytes"),
        };
        let ephemeral = SecretKey::from_slice(&b64("yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"))
            .expect("as_private");
        let salt = b64("DGv6ra1nlYgDCS1FRnbzlw").try_into().expect("16 bytes");
        let body = encrypt_with(
            &to,
            b"When I grow up, I want to be a watermelon",
            &ephemeral,
            salt,
        )
        .expect("encrypts");
        assert_eq!(
            URL_SAFE_NO_PAD.encode(body),
            "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
        );
    }

    #[test]
    fn an_oversized_payload_is_refused() {
        let key = SecretKey::from_slice(&[7u8; 32]).expect("scalar");
        let to = Recipient {
            public: key.public_key(),
            auth: [1; 16],
        };
        assert!(encrypt(&to, &vec![b'x'; MAX_PLAINTEXT]).is_ok());
        assert!(encrypt(&to, &vec![b'x'; MAX_PLAINTEXT + 1]).is_err());
    }
}
