//! TLS on the broker's own listeners: where STOMP over TLS and HTTPS (WSS at `/ws`) listen,
//! the certificate and key they present, and whether clients present certificates of their
//! own (which then say who they are).
//!
//! Both TLS listeners are off unless given an address; either one needs `--tls-cert` and
//! `--tls-key`. A listener other hosts can reach follows the same rule as the plain ones
//! ([`check_reachable`]): it needs authentication configured, or `--allow-anonymous`. Client
//! certificates do not count as that authentication, because the HTTP API served next to WSS
//! has its own (a bearer token) and a client without a certificate is still let in when they
//! are optional.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::builder::{PossibleValuesParser, TypedValueParser, ValueParser};
use serde::{Deserialize, Deserializer};

use super::auth::AuthConfig;
use super::error::ConfigError;
use super::setting::{Value, settings};

settings! {
    /// TLS listeners and the files they use; read again on SIGHUP (`tls_cert`, `tls_key`,
    /// `tls_client_ca`).
    pub struct TlsConfig, layer TlsLayer, heading Some("TLS");

    /// STOMP over TLS; off unless set. RabbitMQ's convention is port 61614.
    stomp_tls_listen: Option<SocketAddr> = None,
        "ADDR:PORT", "STOMP over TLS listen address (conventionally port 61614); off unless set";
    /// HTTPS: WSS at `/ws` and the same HTTP routes as `--http-listen`; off unless set.
    https_listen: Option<SocketAddr> = None,
        "ADDR:PORT", "HTTPS listen address, WSS at /ws (conventionally port 15673); off unless set";
    /// PEM certificate chain the TLS listeners present: the leaf first, then intermediates.
    tls_cert: Option<PathBuf> = None,
        "FILE", "PEM certificate chain (leaf first) for the TLS listeners; reloaded on SIGHUP";
    /// PEM private key of the leaf certificate (PKCS#8, PKCS#1 or SEC1).
    tls_key: Option<PathBuf> = None,
        "FILE", "PEM private key of --tls-cert; reloaded on SIGHUP";
    /// PEM roots that client certificates must chain to. Set: the TLS listeners ask clients
    /// for a certificate, and a verified one names the session's user (its subject CN).
    tls_client_ca: Option<PathBuf> = None,
        "FILE", "PEM CA certificates trusted for client certificates; a verified client certificate's subject CN is the user; reloaded on SIGHUP";
    /// Whether a client certificate is needed when `tls_client_ca` is set.
    tls_client_auth: ClientAuth = ClientAuth::Optional,
        "MODE", "With --tls-client-ca: optional (clients without a certificate log in as usual) or required (the TLS handshake fails without one)";
}

impl TlsConfig {
    /// True when at least one TLS listener is configured.
    pub fn is_enabled(&self) -> bool {
        self.stomp_tls_listen.is_some() || self.https_listen.is_some()
    }

    /// A TLS listener needs a certificate and its key; client-certificate settings need a CA.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.is_enabled() {
            let listener = if self.stomp_tls_listen.is_some() {
                "--stomp-tls-listen"
            } else {
                "--https-listen"
            };
            for (key, file) in [("tls_cert", &self.tls_cert), ("tls_key", &self.tls_key)] {
                if file.is_none() {
                    return Err(ConfigError::Invalid {
                        key,
                        reason: format!(
                            "{listener} is set, so --{} FILE (PEM) is required",
                            key.replace('_', "-")
                        ),
                    });
                }
            }
        }
        if self.tls_client_auth == ClientAuth::Required && self.tls_client_ca.is_none() {
            return Err(ConfigError::Invalid {
                key: "tls_client_auth",
                reason: "required client certificates need --tls-client-ca FILE to verify them"
                    .into(),
            });
        }
        Ok(())
    }
}

impl TlsLayer {
    /// The file paths this source gave, for resolving a config file's relative paths.
    pub(super) fn paths_mut(&mut self) -> impl Iterator<Item = Option<&mut PathBuf>> {
        [
            &mut self.tls_cert,
            &mut self.tls_key,
            &mut self.tls_client_ca,
        ]
        .into_iter()
        .map(|path| path.as_mut().and_then(Option::as_mut))
    }
}

/// Refuses a TLS listener other hosts can reach when no authentication is configured, as
/// `listen::check_reachable` does for the plain listeners.
pub(super) fn check_reachable(auth: &AuthConfig, tls: &TlsConfig) -> Result<(), ConfigError> {
    if auth.is_configured() || auth.allow_anonymous {
        return Ok(());
    }
    for (listener, addr) in [
        ("--stomp-tls-listen", tls.stomp_tls_listen),
        ("--https-listen", tls.https_listen),
    ] {
        if let Some(addr) = addr
            && !addr.ip().to_canonical().is_loopback()
        {
            return Err(ConfigError::Unauthenticated { listener, addr });
        }
    }
    Ok(())
}

/// Whether the TLS listeners require a client certificate (with `--tls-client-ca`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientAuth {
    /// A certificate is asked for; a client without one authenticates by `login`/`passcode`.
    /// One that presents a certificate the CA did not sign fails the handshake. The default,
    /// so browsers (which rarely hold client certificates) can still use WSS with a token.
    #[default]
    Optional,
    /// The handshake fails without a certificate the CA signed.
    Required,
}

impl fmt::Display for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Optional => "optional",
            Self::Required => "required",
        })
    }
}

impl Value for ClientAuth {
    fn parser() -> ValueParser {
        let parser =
            PossibleValuesParser::new(["optional", "required"]).map(|s| match s.as_str() {
                "required" => ClientAuth::Required,
                _ => ClientAuth::Optional,
            });
        ValueParser::new(parser)
    }

    fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        <Self as Deserialize>::deserialize(deserializer)
    }

    fn shown(&self) -> Option<String> {
        Some(self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listening(addr: &str) -> TlsConfig {
        TlsConfig {
            stomp_tls_listen: Some(addr.parse().expect("address")),
            tls_cert: Some("server.pem".into()),
            tls_key: Some("server-key.pem".into()),
            ..TlsConfig::default()
        }
    }

    #[test]
    fn tls_listeners_are_off_by_default() {
        let tls = TlsConfig::default();
        assert!(!tls.is_enabled());
        assert!(tls.validate().is_ok());
        assert_eq!(tls.tls_client_auth, ClientAuth::Optional);
    }

    #[test]
    fn a_tls_listener_needs_a_certificate_and_a_key() {
        for missing in ["tls_cert", "tls_key"] {
            let mut tls = listening("127.0.0.1:61614");
            tls.https_listen = Some("127.0.0.1:15673".parse().expect("address"));
            match missing {
                "tls_cert" => tls.tls_cert = None,
                _ => tls.tls_key = None,
            }
            let err = tls.validate().expect_err("refused").to_string();
            let flag = format!("--{}", missing.replace('_', "-"));
            assert!(err.contains(&flag), "{err}");
            assert!(err.contains("--stomp-tls-listen"), "{err}");
        }
        assert!(listening("127.0.0.1:61614").validate().is_ok());
    }

    #[test]
    fn required_client_certificates_need_a_client_ca() {
        let mut tls = listening("127.0.0.1:61614");
        tls.tls_client_auth = ClientAuth::Required;
        let err = tls.validate().expect_err("refused").to_string();
        assert!(err.contains("--tls-client-ca"), "{err}");
        tls.tls_client_ca = Some("ca.pem".into());
        assert!(tls.validate().is_ok());
    }

    #[test]
    fn a_reachable_tls_listener_needs_authentication() {
        let open = AuthConfig::default();
        assert!(check_reachable(&open, &listening("127.0.0.1:61614")).is_ok());
        let mut public = listening("0.0.0.0:61614");
        assert!(matches!(
            check_reachable(&open, &public),
            Err(ConfigError::Unauthenticated {
                listener: "--stomp-tls-listen",
                ..
            })
        ));
        public.stomp_tls_listen = None;
        public.https_listen = Some("[::]:15673".parse().expect("address"));
        assert!(matches!(
            check_reachable(&open, &public),
            Err(ConfigError::Unauthenticated {
                listener: "--https-listen",
                ..
            })
        ));
        // Client certificates, even required, are not that authentication: the HTTP API next
        // to WSS has its own, and optional ones let anyone without a certificate in.
        public.tls_client_ca = Some("ca.pem".into());
        public.tls_client_auth = ClientAuth::Required;
        assert!(check_reachable(&open, &public).is_err());
        let with_tokens = AuthConfig {
            jwt_secret: Some("x".into()),
            ..AuthConfig::default()
        };
        assert!(check_reachable(&with_tokens, &public).is_ok());
    }
}
