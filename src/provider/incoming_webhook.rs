//! A provider's incoming webhooks, behind one trait: how they are signed, and which payin one
//! is about. A webhook is only ever a trigger: what it says is never applied, the payin is
//! read again from its provider.

use super::WebhookSecrets;
use axum::http::HeaderMap;

/// What a webhook names: its event, and every reference that may identify the payin, in the
/// order to try them (the merchant's first, then the provider's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookTrigger {
    pub event: String,
    pub references: Vec<String>,
}

impl WebhookTrigger {
    /// A trigger for `event` naming the non-empty string values of `keys` in `objects`,
    /// in that order, each once.
    pub fn naming(
        event: String,
        objects: &[Option<&serde_json::Map<String, serde_json::Value>>],
        keys: &[&str],
    ) -> Self {
        let mut references: Vec<String> = Vec::new();
        for object in objects.iter().flatten() {
            for key in keys {
                if let Some(reference) = object.get(*key).and_then(serde_json::Value::as_str)
                    && !reference.is_empty()
                    && !references.iter().any(|r| r == reference)
                {
                    references.push(reference.to_owned());
                }
            }
        }
        Self { event, references }
    }
}

pub trait IncomingWebhook: Send + Sync {
    /// Whether the request is signed under one of `secrets` (never called with none).
    fn signature_is_valid(
        &self,
        secrets: &WebhookSecrets,
        headers: &HeaderMap,
        body: &[u8],
    ) -> bool;

    /// The trigger the body carries; `None` when the body is not a JSON object.
    fn read_trigger(&self, body: &[u8]) -> Option<WebhookTrigger>;
}
