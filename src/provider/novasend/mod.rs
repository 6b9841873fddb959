//! Novasend's merchant API over HTTPS: sessions, status and refunds.

pub mod webhook;
mod wire;

use super::{PaymentProvider, ProviderError, RefundOrder};
use crate::domain::{CreatePayinCommand, Language, ProviderPayin, Refund};
use async_trait::async_trait;
use backon::{ExponentialBuilder, Retryable};
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
    http: reqwest::Client,
    config: NovasendConfig,
}

impl NovasendClient {
    pub fn new(config: NovasendConfig) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("payments-gateway/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the Novasend HTTP client: {e}"))?;
        Ok(Self { http, config })
    }

    fn url(&self, segments: &[&str]) -> url::Url {
        let mut url = self.config.base_url.clone();
        url.path_segments_mut()
            .expect("the base URL is http(s), which has a path")
            .pop_if_empty()
            .extend(segments);
        url
    }

    /// Sends one request and returns the status and body. Transport failures are sorted by
    /// whether the request can have reached Novasend.
    async fn send(
        &self,
        method: Method,
        url: url::Url,
        body: Option<Vec<u8>>,
        idempotency_key: Option<Uuid>,
        language: Language,
    ) -> Result<(StatusCode, bytes::Bytes), ProviderError> {
        let route = url.path().to_owned();
        let mut request = self
            .http
            .request(method.clone(), url)
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
        let started = std::time::Instant::now();
        let outcome = async {
            let response = request.send().await?;
            let status = response.status();
            let bytes = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, bytes))
        }
        .await;
        let elapsed_ms = started.elapsed().as_millis() as u64;
        match outcome {
            Ok((status, bytes)) => {
                tracing::debug!(%method, route, status = status.as_u16(), elapsed_ms, "novasend call");
                Ok((status, bytes))
            }
            Err(e) => {
                let reason = transport_reason(&e);
                tracing::warn!(%method, route, elapsed_ms, reason, "novasend call failed");
                if e.is_connect() {
                    Err(ProviderError::NotSent(reason))
                } else {
                    Err(ProviderError::OutcomeUnknown(reason))
                }
            }
        }
    }
}

/// Describes a transport failure without its URL or headers.
fn transport_reason(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "response body interrupted"
    } else {
        "connection dropped"
    };
    format!("Novasend {kind}")
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
    async fn create_payin(
        &self,
        command: &CreatePayinCommand,
        idempotency_key: Uuid,
        language: Language,
    ) -> Result<ProviderPayin, ProviderError> {
        let body = serde_json::to_vec(&wire::CreateSessionBody::new(command))
            .expect("a session body serializes");
        let url = self.url(&["v1", "payin", "sessions"]);
        let (status, bytes) = self
            .send(
                Method::POST,
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
        reference: &str,
        language: Language,
    ) -> Result<Option<ProviderPayin>, ProviderError> {
        let url = self.url(&["v1", "payin", reference]);
        // A read changes nothing upstream, so a transport failure or a 5xx is retried, briefly.
        let attempt = || async {
            let (status, bytes) = self
                .send(Method::GET, url.clone(), None, None, language)
                .await?;
            match status {
                StatusCode::NOT_FOUND => Ok(None),
                s if s.is_success() => wire::parse_payin(&bytes).map(Some).map_err(malformed),
                s => Err(error_for(s, &bytes)),
            }
        };
        attempt
            .retry(
                ExponentialBuilder::default()
                    .with_min_delay(Duration::from_millis(100))
                    .with_max_delay(Duration::from_secs(1))
                    .with_max_times(2),
            )
            .when(|e| {
                matches!(
                    e,
                    ProviderError::NotSent(_) | ProviderError::OutcomeUnknown(_)
                )
            })
            .await
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
        let url = self.url(&["v1", "payin", reference, "refund"]);
        let (status, bytes) = self
            .send(
                Method::POST,
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
}
