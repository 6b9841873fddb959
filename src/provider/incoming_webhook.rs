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
