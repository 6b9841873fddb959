//! The secrets a provider's webhooks may be signed with: several at once, so that a secret
//! can be rotated without refusing webhooks signed with the old one meanwhile.

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

/// One or more non-empty secrets, or none (signatures are not checked).
#[derive(Clone, Default)]
pub struct WebhookSecrets(Vec<SecretString>);

impl WebhookSecrets {
    /// A comma-separated list (`new,old`); spaces around each secret are ignored. An empty
    /// entry is refused rather than skipped: `a,,b` or a trailing comma is a typo, not a
    /// rotation.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        raw.split(',')
            .map(|secret| match secret.trim() {
                "" => Err("holds an empty secret (two commas in a row, or one at an end)"),
                secret => Ok(SecretString::from(secret)),
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    pub fn one(secret: SecretString) -> Self {
        Self(vec![secret])
    }

    /// The secret to sign with (the sandbox's): the first, the newest by convention.
    pub fn first(&self) -> Option<&SecretString> {
        self.0.first()
    }

    /// Newest first (for the sandbox, which signs with the newest two).
    pub fn iter(&self) -> impl Iterator<Item = &SecretString> {
        self.0.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `signature_hex` is the hex HMAC-SHA256 of `body` under one of the secrets
    /// (any case, surrounding spaces ignored), each compared in constant time.
    pub fn signed(&self, body: &[u8], signature_hex: &str) -> bool {
        let Ok(expected) = hex::decode(signature_hex.trim()) else {
            return false;
        };
        self.any(|secret| {
            let mut mac =
                Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
            mac.update(body);
            mac.verify_slice(&expected).is_ok()
        })
    }

    /// Whether `accepts` holds for the bytes of any of the secrets.
    pub fn any(&self, mut accepts: impl FnMut(&[u8]) -> bool) -> bool {
        self.0
            .iter()
            .any(|secret| accepts(secret.expose_secret().as_bytes()))
    }
}

/// The hex HMAC-SHA256 of `body` under `secret`: how providers sign (for the sandbox and
/// for tests).
pub fn hmac_hex(secret: &SecretString, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

impl std::fmt::Debug for WebhookSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WebhookSecrets([{} redacted])", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_list_and_refuses_empty_entries() {
        let secrets = WebhookSecrets::parse(" new , old").unwrap();
        let mut seen = Vec::new();
        assert!(!secrets.any(|s| {
            seen.push(String::from_utf8(s.to_vec()).unwrap());
            false
        }));
        assert_eq!(seen, ["new", "old"]);
        for typo in ["", "a,,b", "a,", ",a", " , "] {
            assert!(WebhookSecrets::parse(typo).is_err(), "{typo:?}");
        }
        assert_eq!(
            format!("{secrets:?}"),
            "WebhookSecrets([2 redacted])",
            "never shows a secret"
        );
    }
}
