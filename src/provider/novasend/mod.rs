//! Novasend's merchant API over HTTPS: sessions, status and refunds.

#[cfg(test)]
mod properties;
pub mod setup;
mod status;
pub mod webhook;
mod wire;

/// The response parsers, for the fuzz targets in `fuzz/`. Not an API.
#[doc(hidden)]
pub mod fuzzing {
    pub use super::wire::{parse_error, parse_payin, parse_refund};
}

use super::http_client::{Endpoint, ProviderHttp, read_with_retries};
use super::{IncomingWebhook, PayinLookup, PaymentProvider, ProviderError, RefundOrder};
use crate::domain::{CreatePayinCommand, Language, ProviderPayin, Refund};
use async_trait::async_trait;
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;
use uuid::Uuid;

/// Where Novasend is and who we are to it.
#[derive(Clone)]
pub struct NovasendConfig {
    pub base_url: url::Url,
    pub api_key: SecretString,
    pub api_client: SecretString,
    /// Per call; Novasend asks for 30 s at most.
    pub timeout: Duration,
}

pub struct NovasendClient {
    http: ProviderHttp,
    config: NovasendConfig,
}

/// Novasend's name among providers (payins, webhook path, routes).
pub const NAME: &str = "novasend";
const DISPLAY_NAME: &str = "Novasend";

/// Novasend's endpoints, as spans and metrics name them.
#[derive(Debug, Clone, Copy)]
enum Operation {
    CreateSession,
    GetPayin,
    Refund,
}

impl Operation {
    fn endpoint(self) -> Endpoint {
        let (method, template, operation) = match self {
            Self::CreateSession => (Method::POST, "/v1/payin/sessions", "create_session"),
            Self::GetPayin => (Method::GET, "/v1/payin/{reference}", "get_payin"),
            Self::Refund => (Method::POST, "/v1/payin/{reference}/refund", "refund"),
        };
        Endpoint {
            method,
            template,
            operation,
        }
    }
}

impl NovasendClient {
    pub fn new(config: NovasendConfig) -> Result<Self, String> {
        let http = ProviderHttp::new(
            (NAME, DISPLAY_NAME),
            config.base_url.clone(),
            config.timeout,
        )?;
        Ok(Self { http, config })
    }

    /// One call with Novasend's headers: Basic auth, JSON, the caller's language and, for
    /// writes, the idempotency key.
    async fn send(
        &self,
        operation: Operation,
        url: url::Url,
        body: Option<Vec<u8>>,
        idempotency_key: Option<Uuid>,
        language: Language,
    ) -> Result<(StatusCode, bytes::Bytes), ProviderError> {
        self.http
            .send(operation.endpoint(), url, |request| {
                let mut request = request
                    .basic_auth(
                        self.config.api_key.expose_secret(),
                        Some(self.config.api_client.expose_secret()),
                    )
                    .header(reqwest::header::ACCEPT, "application/json")
                    .header(reqwest::header::ACCEPT_LANGUAGE, language.code());
                if let Some(key) = idempotency_key {
                    request = request.header("X-Idempotency-Key", key.to_string());
                }
                if let Some(body) = body {
                    request = request
                        .header(reqwest::header::CONTENT_TYPE, "application/json")
                        .body(body);
                }
                request
            })
            .await
    }
}

/// Maps a non-success HTTP answer to the error it means for us.
fn error_for(status: StatusCode, body: &[u8]) -> ProviderError {
    let (message, correlation_id) = wire::parse_error(body, status.as_u16());
    tracing::info!(
        status = status.as_u16(),
        correlation_id,
        message,
        "novasend refused"
    );
    match status.as_u16() {
        400 | 422 => ProviderError::Rejected(message),
        401 | 403 => ProviderError::Credentials(status.as_u16()),
        404 => ProviderError::NotFound(message),
        409 => ProviderError::Conflict(message),
        429 => ProviderError::RateLimited(message),
        500..=599 => {
            ProviderError::OutcomeUnknown(format!("Novasend answered {status}: {message}"))
        }
        other => ProviderError::Unexpected {
            status: other,
            message,
        },
    }
}

fn malformed(what: String) -> ProviderError {
    tracing::warn!(what, "malformed novasend response");
    ProviderError::Malformed(what)
}

#[async_trait]
impl PaymentProvider for NovasendClient {
    fn name(&self) -> &'static str {
        NAME
    }

    fn display_name(&self) -> &'static str {
        DISPLAY_NAME
    }

    fn credential_settings(&self) -> &'static [&'static str] {
        &["NOVASEND_API_KEY", "NOVASEND_API_CLIENT"]
    }

    fn webhooks(&self) -> &dyn IncomingWebhook {
        &webhook::NovasendWebhooks
    }

    async fn create_payin(
        &self,
        command: &CreatePayinCommand,
        idempotency_key: Uuid,
        language: Language,
    ) -> Result<ProviderPayin, ProviderError> {
        let body = serde_json::to_vec(&wire::CreateSessionBody::new(command))
            .expect("a session body serializes");
        let url = self.http.url(&["v1", "payin", "sessions"]);
        let (status, bytes) = self
            .send(
                Operation::CreateSession,
                url,
                Some(body),
                Some(idempotency_key),
                language,
            )
            .await?;
        if !status.is_success() {
            return Err(error_for(status, &bytes));
        }
        wire::parse_payin(&bytes).map_err(malformed)
    }

    async fn get_payin(
        &self,
        lookup: PayinLookup<'_>,
        language: Language,
    ) -> Result<Option<ProviderPayin>, ProviderError> {
        // Novasend is asked by the merchant's reference, always known.
        let url = self.http.url(&["v1", "payin", lookup.reference]);
        let attempt = || async {
            let (status, bytes) = self
                .send(Operation::GetPayin, url.clone(), None, None, language)
                .await?;
            match status {
                StatusCode::NOT_FOUND => Ok(None),
                s if s.is_success() => wire::parse_payin(&bytes).map(Some).map_err(malformed),
                s => Err(error_for(s, &bytes)),
            }
        };
        read_with_retries(attempt).await
    }

    async fn refund(
        &self,
        reference: &str,
        order: &RefundOrder,
        idempotency_key: Uuid,
        language: Language,
    ) -> Result<Refund, ProviderError> {
        let body =
            serde_json::to_vec(&wire::RefundBody::new(order)).expect("a refund body serializes");
        let url = self.http.url(&["v1", "payin", reference, "refund"]);
        let (status, bytes) = self
            .send(
                Operation::Refund,
                url,
                Some(body),
                Some(idempotency_key),
                language,
            )
            .await?;
        if !status.is_success() {
            return Err(error_for(status, &bytes));
        }
        wire::parse_refund(&bytes).map_err(malformed)
    }

    fn reachable(&self) -> Option<bool> {
        self.http.reachable()
    }
}
