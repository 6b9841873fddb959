//! `POST /webhooks/{provider}`: a trigger, never the truth. The provider's module checks the
//! signature and says which payin the webhook is about; we answer at once and re-read the
//! payin from its provider in the background; only what the provider then says is applied.

use crate::domain::{Language, ObservationSource};
use crate::payments::Payments;
use crate::provider::{PaymentProvider, WebhookSecrets};
use crate::store::StoreError;
use crate::telemetry::metrics::WEBHOOKS;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// At most this many webhook-driven reads run at once; beyond, a webhook is answered 503 so
/// that Novasend delivers it again.
const CONCURRENT_REFRESHES: usize = 64;

#[derive(Clone)]
pub struct WebhookState {
    payments: Payments,
    /// Each provider's webhook secrets, by provider name; none: signatures not checked.
    secrets: Arc<HashMap<&'static str, WebhookSecrets>>,
    refreshes: Arc<Semaphore>,
}

impl WebhookState {
    pub fn new(payments: Payments, secrets: HashMap<&'static str, WebhookSecrets>) -> Self {
        Self {
            payments,
            secrets: Arc::new(secrets),
            refreshes: Arc::new(Semaphore::new(CONCURRENT_REFRESHES)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookOutcome {
    Accepted,
    BadSignature,
    NotJson,
    /// The trigger could not be taken in (store unreachable, too many re-reads running):
    /// 503, so that the provider delivers it again rather than it being lost.
    NotNow,
}

pub async fn receive(
    State(state): State<WebhookState>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    use tracing::Instrument;
    let Some(provider) = state.payments.providers().get(&provider).cloned() else {
        return (
            StatusCode::NOT_FOUND,
            "{\"error\":\"no such provider here\"}",
        );
    };
    let span = tracing::info_span!(
        "webhook",
        otel.name = "POST /webhooks/{provider}",
        otel.kind = "server",
        provider = provider.name(),
    );
    // The re-read it causes carries the sender's trace to the provider (contract §5).
    crate::telemetry::propagation::continue_http_trace(&span, &headers);
    let outcome = accept(&state, &*provider, &headers, &body)
        .instrument(span)
        .await;
    let result = match outcome {
        WebhookOutcome::Accepted => "accepted",
        WebhookOutcome::BadSignature => "bad_signature",
        WebhookOutcome::NotJson => "not_json",
        WebhookOutcome::NotNow => "retry_later",
    };
    metrics::counter!(WEBHOOKS, "provider" => provider.name(), "result" => result).increment(1);
    match outcome {
        WebhookOutcome::Accepted => (StatusCode::OK, "{\"received\":true}"),
        WebhookOutcome::BadSignature => (
            StatusCode::UNAUTHORIZED,
            "{\"error\":\"invalid signature\"}",
        ),
        WebhookOutcome::NotJson => (
            StatusCode::BAD_REQUEST,
            "{\"error\":\"body is not a JSON object\"}",
        ),
        WebhookOutcome::NotNow => (
            StatusCode::SERVICE_UNAVAILABLE,
            "{\"error\":\"cannot take the webhook now; deliver it again\"}",
        ),
    }
}

async fn accept(
    state: &WebhookState,
    provider: &dyn PaymentProvider,
    headers: &HeaderMap,
    body: &[u8],
) -> WebhookOutcome {
    let webhooks = provider.webhooks();
    if let Some(secrets) = state.secrets.get(provider.name()).filter(|s| !s.is_empty())
        && !webhooks.signature_is_valid(secrets, headers, body)
    {
        tracing::warn!("webhook with a missing or wrong signature refused");
        return WebhookOutcome::BadSignature;
    }
    let Some(trigger) = webhooks.read_trigger(body) else {
        return WebhookOutcome::NotJson;
    };
    let found = resolve(&state.payments, provider.name(), &trigger.references).await;
    let reference = match found {
        Ok(Some(reference)) => reference,
        Ok(None) => {
            tracing::info!(
                event = trigger.event,
                "webhook for a payin we do not know; ignored"
            );
            return WebhookOutcome::Accepted;
        }
        Err(e) => {
            tracing::warn!(event = trigger.event, error = %e, "webhook not resolved: store unavailable");
            return WebhookOutcome::NotNow;
        }
    };
    let Ok(permit) = state.refreshes.clone().try_acquire_owned() else {
        tracing::warn!(
            event = trigger.event,
            "too many webhook reads in flight; asking for a later delivery"
        );
        return WebhookOutcome::NotNow;
    };
    tracing::info!(
        event = trigger.event,
        reference,
        "webhook received; re-reading the payin"
    );
    let payments = state.payments.clone();
    let reread = async move {
        let _permit = permit;
        if let Err(e) = payments
            .refresh(&reference, Language::En, ObservationSource::Webhook)
            .await
        {
            tracing::warn!(reference, error = %e, "webhook re-read failed");
        }
    };
    tokio::spawn(tracing::Instrument::in_current_span(reread));
    WebhookOutcome::Accepted
}

/// The merchant reference among the webhook's candidates, matched against both merchant and
/// `provider`'s references of known payins. A store that cannot answer is an error, not
/// "unknown".
async fn resolve(
    payments: &Payments,
    provider: &str,
    candidates: &[String],
) -> Result<Option<String>, StoreError> {
    let store = payments.store();
    for candidate in candidates {
        match store.load_payin(candidate).await {
            Ok(Some(_)) => return Ok(Some(candidate.clone())),
            Ok(None) => {}
            // An unreadable cache entry still names a payin we know.
            Err(StoreError::Corrupt(_)) => return Ok(Some(candidate.clone())),
            Err(e) => return Err(e),
        }
        if let Some(reference) = store.reference_for_provider(provider, candidate).await? {
            return Ok(Some(reference));
        }
    }
    Ok(None)
}
