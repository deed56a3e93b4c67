//! Who a verified TLS client certificate says the peer is.
//!
//! The rule, in docs/protocol.md and docs/security/tls.md: the user is the certificate's
//! subject Common Name (CN), which must be exactly one and a valid principal name. Not the
//! e-mail SAN's local part: `alice@a.example` and `alice@b.example` would both be `alice`, and
//! a CA issuing client certificates for a broker names the user in the CN anyway. The TLS
//! handshake has already checked the chain against `--tls-client-ca`; this only reads names.

use x509_parser::prelude::{FromDer, X509Certificate};

use super::error::AuthError;
use super::principal::Principal;
use super::{Authenticated, Proof};

/// What a verified client certificate says about its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientIdentity {
    /// The subject CN, a valid principal: the session is this user.
    User(Principal),
    /// Verified, but its subject names no usable user; CONNECT is refused with this reason
    /// rather than falling back to a passcode, so a misissued certificate is noticed.
    Unnamed(&'static str),
}

impl ClientIdentity {
    /// Reads the leaf certificate (DER) a verified handshake received.
    pub fn from_der(der: &[u8]) -> Self {
        let Ok((_, certificate)) = X509Certificate::from_der(der) else {
            return Self::Unnamed("unreadable certificate");
        };
        let mut names = certificate.subject().iter_common_name();
        let (Some(cn), None) = (names.next(), names.next()) else {
            return Self::Unnamed("its subject must have exactly one CN");
        };
        let Ok(name) = cn.as_str() else {
            return Self::Unnamed("its CN is not a string");
        };
        match Principal::try_from(name) {
            Ok(principal) => Self::User(principal),
            Err(_) => Self::Unnamed("its CN is not a valid user name"),
        }
    }

    /// The session's principal given the CONNECT `login`: the certificate's user, unless the
    /// login names someone else. The passcode is not consulted: the certificate is the proof.
    pub fn authenticate(&self, login: Option<&str>) -> Result<Authenticated, AuthError> {
        match self {
            Self::User(principal) => match login.filter(|l| !l.is_empty()) {
                Some(login) if login != principal.name() => {
                    Err(AuthError::CertificateLoginMismatch)
                }
                _ => Ok(Authenticated {
                    principal: principal.clone(),
                    proof: Proof::Certificate,
                }),
            },
            Self::Unnamed(why) => Err(AuthError::CertificateUnnamed(why)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> ClientIdentity {
        ClientIdentity::User(Principal::try_from(name).expect("valid"))
    }

    #[test]
    fn the_certificate_user_is_the_principal_and_a_matching_login_is_fine() {
        let alice = user("alice");
        for login in [None, Some(""), Some("alice")] {
            let authenticated = alice.authenticate(login).expect("ok");
            assert_eq!(authenticated.principal.name(), "alice");
            assert!(matches!(authenticated.proof, Proof::Certificate));
        }
    }

    #[test]
    fn a_login_naming_someone_else_is_refused() {
        assert!(matches!(
            user("alice").authenticate(Some("bob")),
            Err(AuthError::CertificateLoginMismatch)
        ));
    }

    #[test]
    fn an_unnamed_certificate_is_refused_with_its_reason() {
        let err = ClientIdentity::Unnamed("its subject must have exactly one CN")
            .authenticate(None)
            .expect_err("refused");
        assert!(err.to_string().contains("exactly one CN"), "{err}");
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        assert_eq!(
            ClientIdentity::from_der(b"not der"),
            ClientIdentity::Unnamed("unreadable certificate")
        );
    }
}
