//! Logs (text or JSON lines on stderr, filtered by RUST_LOG), OpenTelemetry traces over OTLP
//! when OTEL_EXPORTER_OTLP_ENDPOINT is set, and Prometheus metrics.

pub mod metrics;
pub mod propagation;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The spans through which a caller's trace reaches the provider.
const PROPAGATING_SPANS: [&str; 3] = ["rpc", "webhook", "provider"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Where traces go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpConfig {
    /// OTLP/gRPC endpoint, e.g. `http://otel-collector:4317`.
    pub endpoint: String,
    pub service_name: String,
}

/// Keeps the trace pipeline alive; `shutdown` flushes the spans still buffered.
#[derive(Default)]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(e) = provider.shutdown()
        {
            eprintln!("payments-gateway: could not flush traces: {e}");
        }
    }
}

/// Installs logging, and tracing export when `otlp` is given. W3C trace context is always
/// propagated (read from callers, sent to Novasend).
pub fn init(format: LogFormat, otlp: Option<&OtlpConfig>) -> Result<TelemetryGuard, String> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_writer(std::io::stderr)
            .boxed(),
    };
    let (traces, provider) = trace_layer(otlp)?;
    // A second init (tests start several apps in one process) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(traces)
        .with(logs.with_filter(filter))
        .try_init();
    Ok(TelemetryGuard {
        provider: otlp.map(|_| provider),
    })
}

/// The OpenTelemetry layer: it gives our spans trace and span ids, so that a caller's
/// `traceparent` is continued and sent on to the provider (contract §5) whether or not traces
/// are exported. With `otlp` they are also exported over OTLP/gRPC; without, the provider
/// has no exporter and spans go nowhere. For `init` and for tests that install their own
/// subscriber.
pub fn trace_layer<S>(
    otlp: Option<&OtlpConfig>,
) -> Result<(Box<dyn Layer<S> + Send + Sync>, SdkTracerProvider), String>
where
    S: tracing::Subscriber
        + for<'span> tracing_subscriber::registry::LookupSpan<'span>
        + Send
        + Sync,
{
    // W3C trace context only: `propagation::continue_trace` skips a call without a
    // `traceparent`, which a baggage propagator added here would have to revisit.
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    let provider = match otlp {
        Some(config) => {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(config.endpoint.clone())
                .build()
                .map_err(|e| format!("OTEL_EXPORTER_OTLP_ENDPOINT: {e}"))?;
            let resource = opentelemetry_sdk::Resource::builder()
                .with_service_name(config.service_name.clone())
                .build();
            let provider = SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(resource)
                .build();
            opentelemetry::global::set_tracer_provider(provider.clone());
            provider
        }
        None => SdkTracerProvider::builder().build(),
    };
    let tracer = provider.tracer("payments-gateway");
    // Only our own spans go out: not every hyper or h2 internal event. Without an exporter,
    // only the spans that carry a trace to the provider (the server span of a call or a
    // webhook, and the provider call itself) are worth their cost.
    let exporting = otlp.is_some();
    let only_ours = tracing_subscriber::filter::filter_fn(move |metadata| {
        metadata.is_span()
            && metadata.target().starts_with("payments_gateway")
            && (exporting || PROPAGATING_SPANS.contains(&metadata.name()))
    });
    // Parents come from tracing's own span stack, so nothing needs the OpenTelemetry context
    // attached on every poll. Busy and idle time (two clock reads at every poll), the
    // worker thread (tasks move between threads) and the target (the code namespace says
    // it) are not recorded; the source location is, when spans are exported.
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_context_activation(false)
        .with_tracked_inactivity(false)
        .with_threads(false)
        .with_target(false)
        .with_location(exporting)
        .with_filter(only_ours)
        .boxed();
    Ok((layer, provider))
}
