//! Configuration from the environment, mirrored by command-line flags (contract §6).
//! Every value is read as text first so that all bad values are reported, one line each:
//! each component checks its own variables and returns all of its errors.

mod auth;
mod limits;
mod parse;
mod payments;
mod sandbox;
mod store;
mod telemetry;
mod tls;

pub use limits::Limits;
pub(crate) use parse::read_secret;
pub use sandbox::SandboxArgs;
pub use store::{RedisConfig, RedisTopology, StoreConfig};
pub use tls::TlsConfig;

use crate::domain::{Countries, Routes};
use crate::payments::PaymentsSettings;
use crate::provider::catalog::{self, ProviderArgs, ProviderConfigs};
use crate::sandbox::SandboxConfig;
use crate::sandbox::in_process::stands_in_for;
use crate::telemetry::{LogFormat, OtlpConfig};
use clap::Args;
use parse::parse_addr;
use secrecy::SecretString;
use std::net::SocketAddr;
use std::time::Duration;

/// Flags of `serve`; each mirrors its environment variable.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// gRPC listen address.
    #[arg(long, env = "PAYMENTS_GRPC_ADDR", default_value = "0.0.0.0:50051")]
    pub grpc_addr: String,
    /// Webhooks, metrics and health listen address.
    #[arg(long, env = "PAYMENTS_HTTP_ADDR", default_value = "0.0.0.0:8080")]
    pub http_addr: String,
    /// redis:// or rediss:// URL; unset = in-process store (one replica only).
    #[arg(long, env = "PAYMENTS_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// A Redis Cluster's seed nodes, comma-separated redis:// URLs (instead of PAYMENTS_REDIS_URL).
    #[arg(long, env = "PAYMENTS_REDIS_CLUSTER_URLS", hide_env_values = true)]
    pub redis_cluster_urls: Option<String>,
    /// Sentinels, comma-separated host:port, that name the primary (instead of PAYMENTS_REDIS_URL).
    #[arg(long, env = "PAYMENTS_REDIS_SENTINELS", hide_env_values = true)]
    pub redis_sentinels: Option<String>,
    /// The primary's name at the sentinels (their `monitor` name).
    #[arg(long, env = "PAYMENTS_REDIS_SENTINEL_MASTER")]
    pub redis_sentinel_master: Option<String>,
    /// Replicas that must acknowledge (WAIT) a claim or a refund-sent mark before any provider call.
    #[arg(long, env = "PAYMENTS_REDIS_WAIT_REPLICAS", default_value = "0")]
    pub redis_wait_replicas: String,
    /// Every provider's variables (NOVASEND_*, HUB2_* …), each provider's own.
    #[command(flatten)]
    pub providers: ProviderArgs,
    /// Polling period for non-terminal payins (at least 5s).
    #[arg(long, env = "PAYMENTS_POLL_INTERVAL", default_value = "5s")]
    pub poll_interval: String,
    /// Drain period on SIGTERM before open streams end.
    #[arg(long, env = "PAYMENTS_SHUTDOWN_GRACE", default_value = "10s")]
    pub shutdown_grace: String,
    /// Timeout of each provider call (at most 30s).
    #[arg(long, env = "PAYMENTS_UPSTREAM_TIMEOUT", default_value = "30s")]
    pub upstream_timeout: String,
    /// How long idempotency records are kept.
    #[arg(long, env = "PAYMENTS_IDEMPOTENCY_TTL", default_value = "24h")]
    pub idempotency_ttl: String,
    /// How long a duplicate request waits for the first one before ABORTED.
    #[arg(long, env = "PAYMENTS_IDEMPOTENCY_WAIT", default_value = "10s")]
    pub idempotency_wait: String,
    /// How long payins stay in the cache.
    #[arg(long, env = "PAYMENTS_PAYIN_TTL", default_value = "30days")]
    pub payin_ttl: String,
    /// Which provider takes a payin that names none, by country: `CI:hub2,*:novasend`.
    #[arg(long, env = "PAYMENTS_ROUTES", default_value = "*:novasend")]
    pub routes: String,
    /// Accepted countries and their currency.
    #[arg(
        long,
        env = "PAYMENTS_COUNTRIES",
        default_value = "CI:XOF,SN:XOF,TG:XOF,BJ:XOF,ML:XOF,BF:XOF,NE:XOF,CM:XAF"
    )]
    pub countries: String,
    /// text or json.
    #[arg(long, env = "PAYMENTS_LOG_FORMAT", default_value = "text")]
    pub log_format: String,
    /// OTLP/gRPC endpoint for traces; unset = no export.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otel_exporter_otlp_endpoint: Option<String>,
    #[arg(long, env = "OTEL_SERVICE_NAME", default_value = "payments-gateway")]
    pub otel_service_name: String,
    /// Comma-separated bearer tokens callers must send; unset = no caller auth.
    #[arg(long, env = "PAYMENTS_AUTH_TOKENS", hide_env_values = true)]
    pub auth_tokens: Option<String>,
    #[arg(long, env = "PAYMENTS_AUTH_TOKENS_FILE")]
    pub auth_tokens_file: Option<String>,
    /// PEM certificate chain and key for TLS on the gRPC port.
    #[arg(long, env = "PAYMENTS_TLS_CERT")]
    pub tls_cert: Option<String>,
    #[arg(long, env = "PAYMENTS_TLS_KEY")]
    pub tls_key: Option<String>,
    /// PEM CA: callers must present a certificate it signed (mTLS).
    #[arg(long, env = "PAYMENTS_TLS_CLIENT_CA")]
    pub tls_client_ca: Option<String>,
    /// Calls (streams included) one connection may have open at once, advertised in HTTP/2
    /// SETTINGS (MAX_CONCURRENT_STREAMS): a client queues beyond it in its own transport.
    #[arg(
        long,
        env = "PAYMENTS_MAX_CONCURRENT_PER_CONNECTION",
        default_value = "1024"
    )]
    pub max_concurrent_per_connection: String,
    /// Unary calls in progress on this replica, over all connections; beyond, a call is
    /// refused at once with RESOURCE_EXHAUSTED, before any work.
    #[arg(long, env = "PAYMENTS_MAX_IN_FLIGHT", default_value = "512")]
    pub max_in_flight: String,
    /// Whole-call timeout on the gRPC side (streams excepted once opened).
    #[arg(long, env = "PAYMENTS_REQUEST_TIMEOUT", default_value = "60s")]
    pub request_timeout: String,
    /// Open StreamPayinUpdates on this replica; more are refused (RESOURCE_EXHAUSTED).
    #[arg(long, env = "PAYMENTS_MAX_STREAMS", default_value = "10000")]
    pub max_streams: String,
    /// Largest gRPC message accepted or sent, in bytes.
    #[arg(long, env = "PAYMENTS_MAX_MESSAGE_BYTES", default_value = "65536")]
    pub max_message_bytes: String,
    /// HTTP/2 keepalive ping interval; a peer silent for PAYMENTS_KEEPALIVE_TIMEOUT after a ping is dropped.
    #[arg(long, env = "PAYMENTS_KEEPALIVE_INTERVAL", default_value = "30s")]
    pub keepalive_interval: String,
    #[arg(long, env = "PAYMENTS_KEEPALIVE_TIMEOUT", default_value = "10s")]
    pub keepalive_timeout: String,
    /// The built-in sandbox, used when NOVASEND_BASE_URL is unset.
    #[command(flatten)]
    pub sandbox: SandboxArgs,
}

#[derive(Clone)]
pub struct Config {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub store: StoreConfig,
    /// Every provider's settings; one without an API is not enabled, unless the built-in
    /// sandbox, started in process on `sandbox_addr`, stands in for it.
    pub providers: ProviderConfigs,
    pub sandbox_addr: SocketAddr,
    pub sandbox: SandboxConfig,
    pub shutdown_grace: Duration,
    pub countries: Countries,
    /// Checked against the enabled providers when they are registered.
    pub routes: Routes,
    pub log_format: LogFormat,
    pub payments: PaymentsSettings,
    pub otlp: Option<OtlpConfig>,
    /// Empty: no caller authentication.
    pub auth_tokens: Vec<SecretString>,
    pub tls: Option<TlsConfig>,
    pub limits: Limits,
}

impl Config {
    /// Checks every value; the error lists one line per bad variable, in the order below.
    pub fn from_args(args: &ServeArgs) -> Result<Self, Vec<String>> {
        let mut errors = Vec::new();
        let e = &mut errors;
        let grpc_addr = keep(e, named("PAYMENTS_GRPC_ADDR", parse_addr(&args.grpc_addr)));
        let http_addr = keep(e, named("PAYMENTS_HTTP_ADDR", parse_addr(&args.http_addr)));
        let store = keep(e, store::read_store(args));
        let payments = keep(e, payments::read_payments(args));
        let countries = keep(
            e,
            named("PAYMENTS_COUNTRIES", Countries::parse(&args.countries)),
        );
        let log_format = keep(e, telemetry::read_log_format(args));
        // Zero when it is bad itself; read alone so that the request timeout is still
        // checked against it when another duration is bad.
        let upstream_timeout = payments::upstream_timeout(args).unwrap_or(Duration::ZERO);
        let providers = keep(e, args.providers.read(upstream_timeout));
        let enabled = enabled_providers(&args.providers);
        let routes = keep(
            e,
            named("PAYMENTS_ROUTES", read_routes(&args.routes, &enabled)),
        );
        let countries = countries.unwrap_or_default();
        let sandbox = keep(e, args.sandbox.to_config(&countries));
        let otlp = keep(e, telemetry::read_otlp(args));
        let auth_tokens = keep(e, auth::read_auth_tokens(args));
        let tls = keep(e, tls::read_tls(args));
        let limits = keep(e, limits::read_limits(args, upstream_timeout));

        if !errors.is_empty() {
            return Err(errors);
        }
        let (payments, shutdown_grace) = payments.expect("checked");
        let (sandbox_addr, sandbox) = sandbox.expect("checked");
        Ok(Config {
            grpc_addr: grpc_addr.expect("checked"),
            http_addr: http_addr.expect("checked"),
            store: store.expect("checked"),
            providers: providers.expect("checked"),
            shutdown_grace,
            countries,
            routes: routes.expect("checked"),
            sandbox_addr,
            sandbox,
            otlp: otlp.expect("checked"),
            auth_tokens: auth_tokens.expect("checked"),
            tls: tls.expect("checked"),
            limits: limits.expect("checked"),
            log_format: log_format.expect("checked"),
            payments,
        })
    }
}

/// The providers this configuration enables: each with a base URL, and each the in-process
/// sandbox stands in for. From the raw values, so that a bad URL is one error, not a route's
/// too.
fn enabled_providers(args: &ProviderArgs) -> Vec<&'static str> {
    let without_url = args.without_base_url();
    let simulated = stands_in_for(&without_url);
    catalog::NAMES
        .iter()
        .copied()
        .filter(|name| !without_url.contains(name) || simulated.contains(name))
        .collect()
}

/// The routes, each to a provider this configuration enables.
fn read_routes(raw: &str, enabled: &[&str]) -> Result<Routes, String> {
    let routes = Routes::parse(raw)?;
    if let Some(name) = routes.providers().find(|name| !enabled.contains(name)) {
        return Err(format!(
            "routes payins to `{name}`, which is not enabled here (enabled: {})",
            enabled.join(", ")
        ));
    }
    Ok(routes)
}

/// One variable's error, as a component's list of errors.
fn named<T>(variable: &str, result: Result<T, String>) -> Result<T, Vec<String>> {
    result.map_err(|e| vec![format!("{variable}: {e}")])
}

/// A component's value, its errors added to `errors`.
fn keep<T>(errors: &mut Vec<String>, result: Result<T, Vec<String>>) -> Option<T> {
    result.map_err(|e| errors.extend(e)).ok()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn defaults() -> ServeArgs {
        use clap::Parser;
        #[derive(Parser)]
        struct Wrapper {
            #[command(flatten)]
            args: ServeArgs,
        }
        Wrapper::parse_from(["test"]).args
    }

    #[test]
    fn defaults_are_valid() {
        let config = Config::from_args(&defaults()).unwrap();
        assert_eq!(config.payments.poll_interval, Duration::from_secs(5));
        assert_eq!(config.payments.upstream_timeout, Duration::from_secs(30));
        assert_eq!(config.payments.idempotency_ttl, Duration::from_secs(86_400));
        assert_eq!(config.providers.without_api(), catalog::NAMES);
    }

    #[test]
    fn reports_one_line_per_bad_variable() {
        let mut args = ServeArgs {
            grpc_addr: "nowhere".into(),
            poll_interval: "4s".into(),
            upstream_timeout: "31s".into(),
            log_format: "xml".into(),
            redis_url: Some("http://redis".into()),
            ..defaults()
        };
        args.providers.novasend.novasend_base_url = Some("https://novasend.test".into());
        args.providers.novasend.novasend_api_key = Some("k".into());
        let errors = Config::from_args(&args).err().unwrap();
        let variables: Vec<_> = errors
            .iter()
            .map(|e| e.split(':').next().unwrap())
            .collect();
        assert_eq!(
            variables,
            vec![
                "PAYMENTS_GRPC_ADDR",
                "PAYMENTS_REDIS_URL",
                "PAYMENTS_POLL_INTERVAL",
                "PAYMENTS_UPSTREAM_TIMEOUT",
                "PAYMENTS_LOG_FORMAT",
                "NOVASEND_API_CLIENT",
            ]
        );
        assert!(errors.iter().all(|e| !e.contains('\n')));
    }
}
