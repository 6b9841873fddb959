//! Webhooks the sandbox sends, each signed the way its provider signs: Novasend's
//! `x-novasend-signature`, HUB2's `Hub2-Signature` (`s1` under the newest secret, `s0` under
//! the previous one while a secret is rotated). Delivery is fire-and-forget, bounded by the
//! client's timeout, like a provider that does not wait for the merchant.

use super::Shared;
use crate::provider::WebhookSecrets;
use crate::provider::novasend::webhook::{SIGNATURE_HEADER, sign};
use crate::provider::webhook_secrets::hmac_hex;
use axum::http::header;
use serde_json::{Value, json};
use std::sync::Arc;

/// Novasend's `{event, data}`, to the Novasend webhook URL.
pub(super) fn novasend(shared: Arc<Shared>, event: &'static str, data: Value) {
    let Some(url) = shared.config.webhook_url.clone() else {
        return;
    };
    let body = json!({ "event": event, "data": data }).to_string();
    let signature = shared
        .config
        .webhook_secret
        .as_ref()
        .map(|secret| (SIGNATURE_HEADER, sign(secret, body.as_bytes())));
    deliver(shared, url, event, body, signature);
}

/// HUB2's `{id, type, data}`, `data` being the intent, to the HUB2 webhook URL.
pub(super) fn hub2(shared: Arc<Shared>, event: &'static str, intent: Value) {
    let Some(url) = shared.config.hub2.webhook_url.clone() else {
        return;
    };
    let body = json!({
        "id": super::state::new_id("evt"),
        "type": event,
        "data": intent,
    })
    .to_string();
    let secrets = &shared.config.hub2.webhook_secrets;
    let signature = (!secrets.is_empty()).then(|| {
        (
            crate::provider::hub2::webhook::SIGNATURE_HEADER,
            hub2_signature(secrets, chrono::Utc::now().timestamp(), body.as_bytes()),
        )
    });
    deliver(shared, url, event, body, signature);
}

/// `t=<unix seconds>,s1=<hex>[,s0=<hex>]`: the raw body's HMAC-SHA256 under the newest
/// secret, and under the previous one during a rotation, so a receiver that knows only
/// either still accepts it.
pub fn hub2_signature(secrets: &WebhookSecrets, unix_seconds: i64, body: &[u8]) -> String {
    let mut header = format!("t={unix_seconds}");
    for (name, secret) in ["s1", "s0"].iter().zip(secrets.iter()) {
        header.push_str(&format!(",{name}={}", hmac_hex(secret, body)));
    }
    header
}

fn deliver(
    shared: Arc<Shared>,
    url: String,
    event: &'static str,
    body: String,
    signature: Option<(&'static str, String)>,
) {
    tokio::spawn(async move {
        let mut request = shared
            .webhooks
            .post(url)
            .header(header::CONTENT_TYPE, "application/json");
        if let Some((name, value)) = signature {
            request = request.header(name, value);
        }
        match request.body(body).send().await {
            Ok(response) => tracing::debug!(
                event,
                status = response.status().as_u16(),
                "sandbox webhook delivered"
            ),
            Err(e) => tracing::warn!(event, "sandbox webhook not delivered: {}", e.without_url()),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    #[test]
    fn hub2_signs_with_the_newest_secret_and_the_previous_one() {
        let body = br#"{"id":"evt_1","type":"payment_intent.succeeded","data":{"id":"pi_1"}}"#;
        let sig = |secret: &str| hmac_hex(&SecretString::from(secret.to_owned()), body);
        let one = WebhookSecrets::parse("new").unwrap();
        assert_eq!(
            hub2_signature(&one, 1_764_150_000, body),
            format!("t=1764150000,s1={}", sig("new"))
        );
        // A third secret, older still, signs nothing: HUB2's header has two slots.
        let rotating = WebhookSecrets::parse("new,old,older").unwrap();
        assert_eq!(
            hub2_signature(&rotating, 7, body),
            format!("t=7,s1={},s0={}", sig("new"), sig("old"))
        );
    }
}
