//! What every provider's HTTP calls share: one client with its timeouts, a client span per
//! call (carrying the caller's `traceparent` to the provider), metrics by provider, operation
//! and outcome, reachability for readiness, and transport failures sorted by whether the
//! request can have reached the provider. Each provider module keeps its own URLs, headers,
//! JSON and error mapping.

use super::ProviderError;
use crate::telemetry::metrics::{PROVIDER_DURATION, PROVIDER_REACHABLE, PROVIDER_REQUESTS};
use backon::{ExponentialBuilder, Retryable};
use reqwest::{Method, RequestBuilder, StatusCode};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;
use tracing::Instrument;

const UNKNOWN: u8 = 0;
const REACHABLE: u8 = 1;
const UNREACHABLE: u8 = 2;

/// One of a provider's endpoints, as spans and metrics name it.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub method: Method,
    /// The URL template (`/v1/payin/{reference}`): the span's name, never the URL itself.
    pub template: &'static str,
    /// The metrics' `operation` label.
    pub operation: &'static str,
}

pub struct ProviderHttp {
    http: reqwest::Client,
    /// The provider's stable name (metrics label) and the name messages use.
    name: &'static str,
    display_name: &'static str,
    base_url: url::Url,
    /// What the last call told about reachability (for readiness reports).
    reachable: AtomicU8,
}

impl ProviderHttp {
    pub fn new(
        (name, display_name): (&'static str, &'static str),
        base_url: url::Url,
        timeout: Duration,
    ) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .tcp_nodelay(true)
            // A provider's answer is its answer: a redirect is not followed (a POST must not
            // turn into a GET elsewhere; a 3xx is an unexpected answer, reconciled), and
            // nothing is re-sent behind our back (no request is even copied for it).
            .redirect(reqwest::redirect::Policy::none())
            .retry(reqwest::retry::never().max_retries_per_request(0))
            .user_agent(concat!("payments-gateway/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the {display_name} HTTP client: {e}"))?;
        Ok(Self {
            http,
            name,
            display_name,
            base_url,
            reachable: AtomicU8::new(UNKNOWN),
        })
    }

    /// The base URL with `segments` appended, each percent-encoded.
    pub fn url(&self, segments: &[&str]) -> url::Url {
        let mut url = self.base_url.clone();
        url.path_segments_mut()
            .expect("the base URL is http(s), which has a path")
            .pop_if_empty()
            .extend(segments);
        url
    }

    /// Sends one request (`build` adds the provider's headers and body) and returns the
    /// status and body.
    pub async fn send(
        &self,
        endpoint: Endpoint,
        url: url::Url,
        build: impl FnOnce(RequestBuilder) -> RequestBuilder,
    ) -> Result<(StatusCode, bytes::Bytes), ProviderError> {
        let Endpoint {
            method,
            template,
            operation,
        } = endpoint;
        let span = tracing::info_span!(
            "provider",
            otel.name = %format_args!("{method} {template}"),
            otel.kind = "client",
            provider = self.name,
            http.request.method = %method,
            url.template = template,
            server.address = self.base_url.host_str().unwrap_or_default(),
            http.response.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
        );
        let request = build(
            self.http
                .request(method, url)
                .headers(crate::telemetry::propagation::trace_headers(&span)),
        );
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
        let provider = self.name;
        metrics::histogram!(PROVIDER_DURATION, "provider" => provider, "operation" => operation)
            .record(elapsed.as_secs_f64());
        let elapsed_ms = elapsed.as_millis() as u64;
        let counted = |outcome: String| {
            metrics::counter!(PROVIDER_REQUESTS, "provider" => provider, "operation" => operation, "outcome" => outcome)
                .increment(1);
        };
        match outcome {
            Ok((status, bytes)) => {
                self.set_reachable(true);
                counted(status.as_u16().to_string());
                span.record("http.response.status_code", status.as_u16());
                if status.is_server_error() {
                    span.record("otel.status_code", "ERROR");
                }
                tracing::debug!(parent: &span, status = status.as_u16(), elapsed_ms, "provider call");
                Ok((status, bytes))
            }
            Err(e) => {
                let reason = self.transport_reason(&e);
                span.record("otel.status_code", "ERROR");
                counted(
                    if e.is_timeout() {
                        "timeout"
                    } else if e.is_connect() {
                        "connect_error"
                    } else {
                        "dropped"
                    }
                    .to_owned(),
                );
                if e.is_connect() || e.is_timeout() {
                    self.set_reachable(false);
                }
                tracing::warn!(parent: &span, elapsed_ms, reason, "provider call failed");
                if e.is_connect() {
                    Err(ProviderError::NotSent(reason))
                } else {
                    Err(ProviderError::OutcomeUnknown(reason))
                }
            }
        }
    }

    fn set_reachable(&self, reachable: bool) {
        let (state, gauge) = if reachable {
            (REACHABLE, 1.0)
        } else {
            (UNREACHABLE, 0.0)
        };
        self.reachable.store(state, Ordering::Relaxed);
        metrics::gauge!(PROVIDER_REACHABLE, "provider" => self.name).set(gauge);
    }

    /// Whether the last call got an answer; `None` before any call.
    pub fn reachable(&self) -> Option<bool> {
        match self.reachable.load(Ordering::Relaxed) {
            REACHABLE => Some(true),
            UNREACHABLE => Some(false),
            _ => None,
        }
    }

    /// Describes a transport failure without its URL or headers.
    fn transport_reason(&self, e: &reqwest::Error) -> String {
        let kind = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "connection failed"
        } else if e.is_body() || e.is_decode() {
            "response body interrupted"
        } else {
            "connection dropped"
        };
        format!("{} {kind}", self.display_name)
    }
}

/// Runs a read, retried briefly when it got no verdict (unreachable, timeout, 5xx): a read
/// changes nothing upstream, so trying again is safe. Writes are never retried here.
pub async fn read_with_retries<T, F, Fut>(read: F) -> Result<T, ProviderError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ProviderError>>,
{
    read.retry(
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
