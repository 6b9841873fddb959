//! Novasend's webhooks: the signature scheme and where the payin's reference sits.

use crate::provider::webhook_secrets::hmac_hex;
use crate::provider::{IncomingWebhook, WebhookSecrets, WebhookTrigger};
use axum::http::HeaderMap;
use secrecy::SecretString;
use serde_json::Value;

pub const SIGNATURE_HEADER: &str = "x-novasend-signature";

/// Checks `x-novasend-signature`: the hex HMAC-SHA256 of the raw body under one of the
/// secrets, each compared in constant time.
pub fn signature_is_valid(
    secrets: &WebhookSecrets,
    body: &[u8],
    signature_hex: Option<&str>,
) -> bool {
    signature_hex.is_some_and(|signature| secrets.signed(body, signature))
}

/// Signs a body the way Novasend does (for the sandbox and for tests).
pub fn sign(secret: &SecretString, body: &[u8]) -> String {
    hmac_hex(secret, body)
}

/// Novasend's webhooks (contract §5).
pub struct NovasendWebhooks;

impl IncomingWebhook for NovasendWebhooks {
    fn signature_is_valid(
        &self,
        secrets: &WebhookSecrets,
        headers: &HeaderMap,
        body: &[u8],
    ) -> bool {
        let signature = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
        signature_is_valid(secrets, body, signature)
    }

    fn read_trigger(&self, body: &[u8]) -> Option<WebhookTrigger> {
        read_trigger(body)
    }
}

/// Reads a webhook tolerantly: `event` or `type`; `customerReference`, `reference` or `id`,
/// under `data` or at the top level. `None`: the body is not a JSON object.
pub fn read_trigger(body: &[u8]) -> Option<WebhookTrigger> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let top = value.as_object()?;
    let event = ["event", "type"]
        .iter()
        .find_map(|k| top.get(*k).and_then(Value::as_str))
        .unwrap_or("unknown")
        .to_owned();
    let data = top.get("data").and_then(Value::as_object);
    Some(WebhookTrigger::naming(
        event,
        &[data, Some(top)],
        &["customerReference", "reference", "id"],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_hex_hmac_sha256_of_the_raw_body() {
        let secret = SecretString::from("whsec_test");
        let secrets = WebhookSecrets::one(secret.clone());
        let body = br#"{"event":"payin.confirmed"}"#;
        let signature = sign(&secret, body);
        assert!(signature_is_valid(&secrets, body, Some(&signature)));
        assert!(signature_is_valid(
            &secrets,
            body,
            Some(&signature.to_uppercase())
        ));
        assert!(!signature_is_valid(&secrets, b"{}", Some(&signature)));
        let other = WebhookSecrets::parse("other").unwrap();
        assert!(!signature_is_valid(&other, body, Some(&signature)));
        assert!(!signature_is_valid(&secrets, body, Some("zz")));
        assert!(!signature_is_valid(&secrets, body, None));
        assert!(!signature_is_valid(
            &WebhookSecrets::default(),
            body,
            Some(&signature)
        ));
    }

    #[test]
    fn any_of_several_secrets_signs_during_a_rotation() {
        let body = br#"{"event":"payin.confirmed"}"#;
        let secrets = WebhookSecrets::parse("whsec_new,whsec_old").unwrap();
        for secret in ["whsec_new", "whsec_old"] {
            let signature = sign(&SecretString::from(secret), body);
            assert!(
                signature_is_valid(&secrets, body, Some(&signature)),
                "{secret}"
            );
        }
        let retired = sign(&SecretString::from("whsec_older"), body);
        assert!(!signature_is_valid(&secrets, body, Some(&retired)));
    }

    #[test]
    fn finds_references_wherever_they_are() {
        let nested = read_trigger(
            br#"{"event":"payin.confirmed","data":{"id":"pr_1","reference":"order-1"}}"#,
        )
        .unwrap();
        assert_eq!(nested.event, "payin.confirmed");
        assert_eq!(nested.references, vec!["order-1", "pr_1"]);
        let shape_2025 = read_trigger(br#"{"type":"payin.declined","data":{"reference":"tr_1","customerReference":"order-2"}}"#).unwrap();
        assert_eq!(shape_2025.event, "payin.declined");
        assert_eq!(shape_2025.references, vec!["order-2", "tr_1"]);
        let flat = read_trigger(br#"{"reference":"order-3"}"#).unwrap();
        assert_eq!(
            (flat.event.as_str(), flat.references),
            ("unknown", vec!["order-3".to_owned()])
        );
        assert!(read_trigger(b"not json").is_none());
        assert!(read_trigger(b"[1,2]").is_none());
    }
}
