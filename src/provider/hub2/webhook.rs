//! HUB2's webhooks (contract §9): `Hub2-Signature` holds `t=<unix seconds>`, `s1=<hex>` and
//! optionally `s0=<hex>`; one of the `s` values must be the hex HMAC-SHA256 of the raw body
//! under one of the configured secrets. The payin is named by the intent id or the
//! merchant's purchase reference.

use crate::provider::{IncomingWebhook, WebhookSecrets, WebhookTrigger};
use axum::http::HeaderMap;
use serde_json::Value;

pub const SIGNATURE_HEADER: &str = "hub2-signature";

pub struct Hub2Webhooks;

impl IncomingWebhook for Hub2Webhooks {
    fn signature_is_valid(
        &self,
        secrets: &WebhookSecrets,
        headers: &HeaderMap,
        body: &[u8],
    ) -> bool {
        let Some(header) = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()) else {
            return false;
        };
        signatures(header).any(|signature| secrets.signed(body, signature))
    }

    fn read_trigger(&self, body: &[u8]) -> Option<WebhookTrigger> {
        read_trigger(body)
    }
}

/// The `s1` and `s0` values of a `Hub2-Signature` header, in order.
fn signatures(header: &str) -> impl Iterator<Item = &str> {
    header.split(',').filter_map(|part| {
        let (key, value) = part.trim().split_once('=')?;
        matches!(key.trim(), "s1" | "s0").then_some(value.trim())
    })
}

/// `{id, type, data: {…}}`: the event is `type`; the payin is `data.purchaseReference`
/// (the merchant's, tried first), `data.id` or `data.paymentIntentId`.
pub fn read_trigger(body: &[u8]) -> Option<WebhookTrigger> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let top = value.as_object()?;
    let event = top
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("unknown")
        .to_owned();
    let data = top.get("data").and_then(Value::as_object);
    Some(WebhookTrigger::naming(
        event,
        &[data],
        &["purchaseReference", "id", "paymentIntentId"],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::webhook_secrets::hmac_hex;
    use secrecy::SecretString;

    fn headers(signature: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("Hub2-Signature", signature.parse().unwrap());
        headers
    }

    #[test]
    fn any_s_value_under_any_secret_during_a_rotation() {
        let body = br#"{"id":"evt_1","type":"payment_intent.succeeded","data":{"id":"pi_1"}}"#;
        let secrets = WebhookSecrets::parse("whsec_new,whsec_old").unwrap();
        let new = hmac_hex(&SecretString::from("whsec_new"), body);
        let old = hmac_hex(&SecretString::from("whsec_old"), body);
        let retired = hmac_hex(&SecretString::from("whsec_older"), body);
        let hooks = Hub2Webhooks;
        for header in [
            format!("t=1764150000,s1={new}"),
            format!("t=1764150000, s1={retired}, s0={old}"),
            format!("s0={new},t=1764150000"),
        ] {
            assert!(
                hooks.signature_is_valid(&secrets, &headers(&header), body),
                "{header}"
            );
        }
        for header in [
            format!("t=1764150000,s1={retired}"),
            format!("t={new}"),
            "t=1764150000".to_owned(),
            format!("s1={new}x"),
        ] {
            assert!(
                !hooks.signature_is_valid(&secrets, &headers(&header), body),
                "{header}"
            );
        }
        assert!(!hooks.signature_is_valid(&secrets, &HeaderMap::new(), body));
        assert!(!hooks.signature_is_valid(&secrets, &headers(&format!("s1={new}")), b"{}"));
    }

    #[test]
    fn finds_the_purchase_reference_then_the_intent() {
        let trigger = read_trigger(
            br#"{"id":"evt_1","type":"payment.succeeded","data":{"id":"pa_9","paymentIntentId":"pi_1","purchaseReference":"order-7"}}"#,
        )
        .unwrap();
        assert_eq!(trigger.event, "payment.succeeded");
        assert_eq!(trigger.references, ["order-7", "pa_9", "pi_1"]);
        let bare = read_trigger(br#"{"data":{"id":"pi_2"}}"#).unwrap();
        assert_eq!(
            (bare.event.as_str(), bare.references),
            ("unknown", vec!["pi_2".to_owned()])
        );
        assert!(read_trigger(b"[]").is_none());
        assert!(read_trigger(b"nope").is_none());
    }
}
