//! A Web Push service as the broker meets it (RFC 8030): subscriptions whose private keys
//! the testbed holds (as the browser would), `POST /wp/<id>` with a VAPID authorization
//! (RFC 8292) whose ES256 signature, `k`, `aud` and `exp` are checked, and the
//! `aes128gcm` body (RFC 8291) decrypted with the subscription's key, as the browser does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use hkdf::Hkdf;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use p256::elliptic_curve::Generate;
use p256::{PublicKey, SecretKey};
use ring::aead::{AES_128_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::Shared;
use crate::keys;
use crate::record::{self, Scripted, now_ms};

const PLATFORM: &str = "webpush";
const RECORDED: &[&str] = &["ttl", "urgency", "topic", "content-encoding"];

/// One browser subscription: what the page would hand the broker, and the keys behind it.
pub(crate) struct Subscription {
    pub endpoint: String,
    secret: SecretKey,
    auth: [u8; 16],
}

impl Subscription {
    /// The browser's `PushSubscription.toJSON()`.
    pub(crate) fn json(&self) -> Value {
        json!({
            "endpoint": self.endpoint,
            "expirationTime": null,
            "keys": {
                "p256dh": keys::public_point(&self.secret),
                "auth": URL_SAFE_NO_PAD.encode(self.auth),
            },
        })
    }
}

pub(crate) struct WebPush {
    /// `https://127.0.0.1:<port>`: the `aud` a VAPID token must name.
    pub origin: String,
    /// The VAPID public key (base64url point) the subscriptions were made with.
    pub vapid_public: String,
    pub subscriptions: Mutex<HashMap<String, Arc<Subscription>>>,
}

impl WebPush {
    /// A new subscription, as a browser's `pushManager.subscribe()` makes one.
    pub(crate) fn subscribe(&self) -> Value {
        let id = keys::random_hex(12);
        let subscription = Subscription {
            endpoint: format!("{}/wp/{id}", self.origin),
            secret: SecretKey::generate(),
            auth: keys::random_bytes(),
        };
        let json = subscription.json();
        self.subscriptions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, Arc::new(subscription));
        json
    }

    /// The VAPID authorization checked as a push service does; the error says why.
    fn check_vapid(&self, headers: &HeaderMap) -> Result<(), (StatusCode, String)> {
        let unauthorized = |why: String| (StatusCode::UNAUTHORIZED, why);
        let value = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("vapid "))
            .ok_or_else(|| unauthorized("no vapid authorization".into()))?;
        let mut token = None;
        let mut key = None;
        for part in value.split(',') {
            match part.trim().split_once('=') {
                Some(("t", v)) => token = Some(v.trim()),
                Some(("k", v)) => key = Some(v.trim()),
                _ => {}
            }
        }
        let (token, key) = token
            .zip(key)
            .ok_or_else(|| unauthorized("vapid needs t and k".into()))?;
        // RFC 8292 §4.2: a key other than the subscription's applicationServerKey is 403.
        if key != self.vapid_public {
            return Err((
                StatusCode::FORBIDDEN,
                "k is not the subscription's key".into(),
            ));
        }
        let point = URL_SAFE_NO_PAD
            .decode(key)
            .ok()
            .filter(|p| p.len() == 65 && p[0] == 4)
            .ok_or_else(|| unauthorized("k is not an uncompressed P-256 point".into()))?;
        let decoding = DecodingKey::from_ec_components(
            &URL_SAFE_NO_PAD.encode(&point[1..33]),
            &URL_SAFE_NO_PAD.encode(&point[33..]),
        )
        .map_err(|e| unauthorized(format!("k: {e}")))?;
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_audience(&[&self.origin]);
        validation.set_required_spec_claims(&["exp", "aud", "sub"]);
        let claims = jsonwebtoken::decode::<VapidClaims>(token, &decoding, &validation)
            .map_err(|e| unauthorized(format!("VAPID token: {e}")))?
            .claims;
        if claims.exp > now_ms() / 1000 + 24 * 3600 {
            return Err(unauthorized("exp is more than 24 hours ahead".into()));
        }
        if !(claims.sub.starts_with("mailto:") || claims.sub.starts_with("https:")) {
            return Err(unauthorized(format!(
                "sub {:?} is not a contact URI",
                claims.sub
            )));
        }
        Ok(())
    }
}

#[derive(Deserialize)]
struct VapidClaims {
    exp: u64,
    sub: String,
}

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/wp/{id}", post(deliver))
}

/// HKDF-SHA256 by RustCrypto: the broker's side uses ring's, so a mistake in one does not
/// cancel out in the other.
fn hkdf_fill(salt: &[u8], ikm: &[u8], info: &[&[u8]], out: &mut [u8]) -> Result<(), String> {
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand_multi_info(info, out)
        .map_err(|_| "HKDF output too long".to_owned())
}

/// RFC 8291 decryption with the subscription's private key: the browser's side.
fn decrypt(subscription: &Subscription, body: &[u8]) -> Result<Vec<u8>, String> {
    if body.len() < 21 {
        return Err("body shorter than the aes128gcm header".into());
    }
    let (salt, rest) = body.split_at(16);
    let record_size = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
    let id_len = rest[4] as usize;
    let rest = &rest[5..];
    if id_len != 65 || rest.len() < id_len {
        return Err("keyid must be the sender's 65-byte public key".into());
    }
    let (as_public, record) = rest.split_at(id_len);
    if record.len() > record_size {
        return Err("more than one record".into());
    }
    let sender = PublicKey::from_sec1_bytes(as_public).map_err(|_| "keyid is not a P-256 point")?;
    let shared =
        p256::ecdh::diffie_hellman(subscription.secret.to_nonzero_scalar(), sender.as_affine());
    let ua_public = URL_SAFE_NO_PAD
        .decode(keys::public_point(&subscription.secret))
        .map_err(|e| e.to_string())?;
    let mut ikm = [0u8; 32];
    hkdf_fill(
        &subscription.auth,
        shared.raw_secret_bytes(),
        &[b"WebPush: info\0", &ua_public, as_public],
        &mut ikm,
    )?;
    let mut cek = [0u8; 16];
    hkdf_fill(salt, &ikm, &[b"Content-Encoding: aes128gcm\0"], &mut cek)?;
    let mut nonce = [0u8; 12];
    hkdf_fill(salt, &ikm, &[b"Content-Encoding: nonce\0"], &mut nonce)?;
    let key = LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &cek).map_err(|_| "content key")?);
    let mut sealed = record.to_vec();
    let plain = key
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::empty(),
            &mut sealed,
        )
        .map_err(|_| "the record does not decrypt (wrong keys or corrupted)")?;
    // Strip the padding: zeros after the last record's delimiter 0x02.
    let end = plain
        .iter()
        .rposition(|b| *b != 0)
        .ok_or("record has no delimiter")?;
    if plain[end] != 2 {
        return Err("the last record's delimiter must be 0x02".into());
    }
    Ok(plain[..end].to_vec())
}

async fn deliver(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let webpush = &shared.webpush;
    let recorder = &shared.recorder;
    let endpoint = format!("{}/wp/{id}", webpush.origin);
    let refuse = |status: StatusCode, why: &str| {
        recorder.attempt(PLATFORM, &endpoint, status.as_u16(), why);
        (status, Json(json!({"reason": why}))).into_response()
    };
    let subscription = webpush
        .subscriptions
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&id)
        .cloned();
    let Some(subscription) = subscription else {
        return refuse(StatusCode::NOT_FOUND, "no such subscription");
    };
    if let Err((status, why)) = webpush.check_vapid(&headers) {
        return refuse(status, &why);
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if header("ttl").and_then(|t| t.parse::<u64>().ok()).is_none() {
        return refuse(StatusCode::BAD_REQUEST, "TTL header is required");
    }
    if header("content-encoding") != Some("aes128gcm") {
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Encoding must be aes128gcm",
        );
    }
    if header("topic").is_some_and(|t| {
        t.len() > 32
            || !t
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }) {
        return refuse(
            StatusCode::BAD_REQUEST,
            "Topic must be at most 32 base64url characters",
        );
    }
    match recorder.scripted(PLATFORM, &[&endpoint, &id]) {
        Some(Scripted::Outage(outage)) => {
            return outage.answer(|status| refuse(status, "scripted outage"));
        }
        Some(Scripted::Dead | Scripted::Invalid) => {
            return refuse(StatusCode::GONE, "subscription expired");
        }
        None => {}
    }
    if body.len() > 4096 {
        return refuse(StatusCode::PAYLOAD_TOO_LARGE, "body over 4096 bytes");
    }
    let plaintext = match decrypt(&subscription, &body) {
        Ok(plaintext) => plaintext,
        Err(why) => return refuse(StatusCode::BAD_REQUEST, &why),
    };
    let payload = serde_json::from_slice(&plaintext)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&plaintext).into_owned()));
    let recorded = record::headers(&headers, RECORDED);
    recorder.accept(PLATFORM, &endpoint, recorded, payload);
    let mut response = StatusCode::CREATED.into_response();
    if let Ok(location) = format!("{}/msg/{}", webpush.origin, keys::random_hex(8)).parse() {
        response.headers_mut().insert("location", location);
    }
    response
}
