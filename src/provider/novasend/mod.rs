//! Novasend's merchant API over HTTPS: sessions, status and refunds.

#[cfg(test)]
mod properties;
mod status;
pub mod webhook;
mod wire;

/// The response parsers, for the fuzz targets in `fuzz/`. Not an API.
#[doc(hidden)]
pub mod fuzzing {
    pub use super::wire::{parse_error, parse_payin, parse_refund};
}

use super::{IncomingWebhook, PaymentProvider, ProviderError, RefundOrder};
use crate::domain::{CreatePayinCommand, Language, ProviderPayin, Refund};
use crate::telemetry::metrics::{NOVASEND_DURATION, NOVASEND_REACHABLE, NOVASEND_REQUESTS};
use async_trait::async_trait;
use backon::{ExponentialBuilder, Retryable};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;
use tracing::Instrument;
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
    /// What the last call told about reachability (for readiness reports).
    reachable: AtomicU8,
}

/// Novasend's name among providers (payins, webhook path, routes).
pub const NAME: &str = "novasend";

const UNKNOWN: u8 = 0;
const REACHABLE: u8 = 1;
const UNREACHABLE: u8 = 2;

/// Novasend's endpoints, as spans and metrics name them.
#[derive(Debug, Clone, Copy)]
enum Operation {
    CreateSession,
    GetPayin,
    Refund,
}

impl Operation {
    fn route(self) -> (Method, &'static str) {
        match self {
            Self::CreateSession => (Method::POST, "/v1/payin/sessions"),
            Self::GetPayin => (Method::GET, "/v1/payin/{reference}"),
            Self::Refund => (Method::POST, "/v1/payin/{reference}/refund"),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::CreateSession => "create_session",
            Self::GetPayin => "get_payin",
            Self::Refund => "refund",
        }
    }
}

impl NovasendClient {
    pub fn new(config: NovasendConfig) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("payments-gateway/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the Novasend HTTP client: {e}"))?;
        Ok(Self {
            http,
            config,
            reachable: AtomicU8::new(UNKNOWN),
        })
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
    /// whether the request can have reached Novasend. Each call is a client span (carrying
    /// `traceparent` to Novasend) and is counted by operation and outcome.
    async fn send(
        &self,
        operation: Operation,
        url: url::Url,
        body: Option<Vec<u8>>,
        idempotency_key: Option<Uuid>,
        language: Language,
    ) -> Result<(StatusCode, bytes::Bytes), ProviderError> {
        let (method, template) = operation.route();
        let span = tracing::info_span!(
            "novasend",
            otel.name = %format_args!("{method} {template}"),
            otel.kind = "client",
            http.request.method = %method,
            url.template = template,
            server.address = self.config.base_url.host_str().unwrap_or_default(),
            http.response.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
        );
        let mut request = self
            .http
            .request(method.clone(), url)
            .headers(crate::telemetry::propagation::trace_headers(&span))
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
        .instrument(span.clone())
        .await;
        let elapsed = started.elapsed();
        let name = operation.name();
        metrics::histogram!(NOVASEND_DURATION, "operation" => name).record(elapsed.as_secs_f64());
        let elapsed_ms = elapsed.as_millis() as u64;
        match outcome {
            Ok((status, bytes)) => {
                self.reachable.store(REACHABLE, Ordering::Relaxed);
                metrics::gauge!(NOVASEND_REACHABLE).set(1.0);
                metrics::counter!(NOVASEND_REQUESTS, "operation" => name, "outcome" => status.as_u16().to_string()).increment(1);
                span.record("http.response.status_code", status.as_u16());
                if status.is_server_error() {
                    span.record("otel.status_code", "ERROR");
                }
                tracing::debug!(parent: &span, status = status.as_u16(), elapsed_ms, "novasend call");
                Ok((status, bytes))
            }
            Err(e) => {
                let reason = transport_reason(&e);
                span.record("otel.status_code", "ERROR");
                let outcome = if e.is_timeout() {
                    "timeout"
                } else if e.is_connect() {
                    "connect_error"
                } else {
                    "dropped"
                };
                metrics::counter!(NOVASEND_REQUESTS, "operation" => name, "outcome" => outcome)
                    .increment(1);
                if e.is_connect() || e.is_timeout() {
                    self.reachable.store(UNREACHABLE, Ordering::Relaxed);
                    metrics::gauge!(NOVASEND_REACHABLE).set(0.0);
                }
                tracing::warn!(parent: &span, elapsed_ms, reason, "novasend call failed");
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
    fn name(&self) -> &'static str {
        NAME
    }

    fn display_name(&self) -> &'static str {
        "Novasend"
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
        let url = self.url(&["v1", "payin", "sessions"]);
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
        reference: &str,
        language: Language,
    ) -> Result<Option<ProviderPayin>, ProviderError> {
        let url = self.url(&["v1", "payin", reference]);
        // A read changes nothing upstream, so a transport failure or a 5xx is retried, briefly.
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
        match self.reachable.load(Ordering::Relaxed) {
            REACHABLE => Some(true),
            UNREACHABLE => Some(false),
            _ => None,
        }
    }
}
