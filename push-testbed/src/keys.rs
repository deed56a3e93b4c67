//! The key material a testbed run makes for itself at start: a CA and a TLS certificate for
//! 127.0.0.1/localhost, the FCM service account's RSA key, the APNs .p8 signing key, the
//! broker's VAPID key, and Web Push subscriptions (a browser's keys). The broker gets the
//! private halves as files; the testbed keeps what it verifies with.

use std::path::{Path, PathBuf};

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::SecretKey;
use p256::elliptic_curve::Generate;
use p256::elliptic_curve::sec1::ToSec1Point;
use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};

/// The TLS identity the HTTPS listener presents, and the CA a client must trust for it.
pub(crate) struct Tls {
    pub ca_pem: String,
    pub cert_der: Vec<u8>,
    pub key_der: Vec<u8>,
}

/// Signed by a throwaway CA (rather than self-signed) so clients verify a chain, as they
/// do against the real services.
pub(crate) fn tls() -> anyhow::Result<Tls> {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "push-testbed CA");
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate()?;
    let leaf_params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])?;
    let leaf = leaf_params.signed_by(&leaf_key, &issuer)?;
    Ok(Tls {
        ca_pem: ca_cert.pem(),
        cert_der: leaf.der().to_vec(),
        key_der: leaf_key.serialize_der(),
    })
}

/// An RSA key as a service-account JSON carries it, and the public half to verify grants.
pub(crate) struct RsaKey {
    pub private_pem: String,
    pub public_pem: String,
}

pub(crate) fn rsa() -> anyhow::Result<RsaKey> {
    // 2048 bits, what Google issues.
    let key = rsa::PrivateKey::new(&mut rand::rng(), 2048).context("generating the RSA key")?;
    Ok(RsaKey {
        private_pem: key.to_pkcs8_pem(LineEnding::LF)?.to_string(),
        public_pem: key.to_public_key().to_public_key_pem(LineEnding::LF)?,
    })
}

/// A P-256 key: PKCS#8 PEM for the broker (the .p8 format Apple hands out), the SPKI PEM
/// and raw point for verifying.
pub(crate) struct EcKey {
    pub secret: SecretKey,
    pub private_pem: String,
    pub public_pem: String,
}

pub(crate) fn p256() -> anyhow::Result<EcKey> {
    let secret = SecretKey::generate();
    Ok(EcKey {
        private_pem: secret.to_pkcs8_pem(LineEnding::LF)?.to_string(),
        public_pem: secret.public_key().to_public_key_pem(LineEnding::LF)?,
        secret,
    })
}

/// The uncompressed point, base64url: VAPID's `k`, a subscription's `p256dh`.
pub(crate) fn public_point(secret: &SecretKey) -> String {
    URL_SAFE_NO_PAD.encode(secret.public_key().to_sec1_point(false).as_bytes())
}

pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::fill(&mut bytes);
    bytes
}

pub(crate) fn random_hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

/// Writes `contents` to `dir/name` and returns the path.
pub(crate) fn write(dir: &Path, name: &str, contents: &str) -> anyhow::Result<PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}
