//! A device a user registered for push, in the JSON shape clients send to
//! `/app/push.register`: `{"platform":"fcm","token":…}`, `{"platform":"apns","token":…}` or
//! `{"platform":"webpush","subscription":<the browser's PushSubscription JSON>}`.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::PushError;

/// Longest token or endpoint accepted at registration; real ones are a few hundred bytes.
const MAX_ADDRESS_BYTES: usize = 4096;

/// A registered device. Two registrations with the same [`Device::address`] are one device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "platform", rename_all = "lowercase")]
pub enum Device {
    Fcm { token: String },
    Apns { token: String },
    Webpush { subscription: WebPushSubscription },
}

/// The browser's `PushSubscription.toJSON()`; fields other than these are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebPushSubscription {
    pub endpoint: String,
    pub keys: WebPushKeys,
}

/// The subscription's keys, base64url as the browser gives them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebPushKeys {
    /// The user agent's P-256 public key (uncompressed point).
    pub p256dh: String,
    /// The 16-byte authentication secret.
    pub auth: String,
}

/// Which service carries a device's notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Platform {
    Fcm,
    Apns,
    Webpush,
}

impl Device {
    pub fn platform(&self) -> Platform {
        match self {
            Device::Fcm { .. } => Platform::Fcm,
            Device::Apns { .. } => Platform::Apns,
            Device::Webpush { .. } => Platform::Webpush,
        }
    }

    /// What identifies the device within its platform: the token, or the Web Push endpoint.
    pub fn address(&self) -> &str {
        match self {
            Device::Fcm { token } | Device::Apns { token } => token,
            Device::Webpush { subscription } => &subscription.endpoint,
        }
    }

    /// Shape checks every platform shares (non-empty, bounded, printable); what a platform
    /// checks beyond that is its provider's [`Provider::accepts`](crate::Provider::accepts).
    pub fn check(&self) -> Result<(), PushError> {
        let address = self.address();
        if address.is_empty() || address.len() > MAX_ADDRESS_BYTES {
            return Err(PushError::InvalidDevice(format!(
                "a {} token or endpoint must be 1 to {MAX_ADDRESS_BYTES} bytes",
                self.platform()
            )));
        }
        if address.chars().any(char::is_control) {
            return Err(PushError::InvalidDevice(
                "a token or endpoint must not contain control characters".into(),
            ));
        }
        Ok(())
    }
}

impl Platform {
    pub fn name(self) -> &'static str {
        match self {
            Platform::Fcm => "fcm",
            Platform::Apns => "apns",
            Platform::Webpush => "webpush",
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_registration_shapes_parse() {
        let fcm: Device =
            serde_json::from_str(r#"{"platform":"fcm","token":"abc"}"#).expect("parses");
        assert_eq!(fcm.platform(), Platform::Fcm);
        assert_eq!(fcm.address(), "abc");
        let web: Device = serde_json::from_str(
            r#"{"platform":"webpush","subscription":{"endpoint":"https://push.example/x",
                "expirationTime":null,"keys":{"p256dh":"BP","auth":"au"}}}"#,
        )
        .expect("parses");
        assert_eq!(web.platform(), Platform::Webpush);
        assert_eq!(web.address(), "https://push.example/x");
        assert!(serde_json::from_str::<Device>(r#"{"platform":"sms","token":"1"}"#).is_err());
    }

    #[test]
    fn empty_and_oversized_addresses_are_refused() {
        assert!(
            Device::Apns {
                token: String::new()
            }
            .check()
            .is_err()
        );
        let long = "a".repeat(MAX_ADDRESS_BYTES + 1);
        assert!(Device::Fcm { token: long }.check().is_err());
        assert!(Device::Fcm { token: "ok".into() }.check().is_ok());
    }
}
