//! Configuration from the environment, mirrored by command-line flags (contract §6).
//! Every value is read as text first so that all bad values are reported, one line each.

use crate::domain::Countries;
use crate::payments::PaymentsSettings;
use crate::provider::WebhookSecrets;
use crate::provider::novasend::NovasendConfig;
use crate::provider::sandbox::{Fault, ResponseShape, SandboxConfig};
use crate::telemetry::{LogFormat, OtlpConfig};
use clap::Args;
use secrecy::{ExposeSecret, SecretString};
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
    /// Novasend base URL, e.g. https://business.novasend.app.
    #[arg(long, env = "NOVASEND_BASE_URL")]
    pub novasend_base_url: Option<String>,
    #[arg(long, env = "NOVASEND_API_KEY", hide_env_values = true)]
    pub novasend_api_key: Option<String>,
    #[arg(long, env = "NOVASEND_API_KEY_FILE")]
    pub novasend_api_key_file: Option<String>,
    #[arg(long, env = "NOVASEND_API_CLIENT", hide_env_values = true)]
    pub novasend_api_client: Option<String>,
    #[arg(long, env = "NOVASEND_API_CLIENT_FILE")]
    pub novasend_api_client_file: Option<String>,
    /// Enables webhook signature checks; several comma-separated secrets (newest first)
    /// during a rotation.
    #[arg(long, env = "NOVASEND_WEBHOOK_SECRET", hide_env_values = true)]
    pub novasend_webhook_secret: Option<String>,
    #[arg(long, env = "NOVASEND_WEBHOOK_SECRET_FILE")]
    pub novasend_webhook_secret_file: Option<String>,
    /// Polling period for non-terminal payins (at least 5s).
    #[arg(long, env = "PAYMENTS_POLL_INTERVAL", default_value = "5s")]
    pub poll_interval: String,
    /// Drain period on SIGTERM before open streams end.
    #[arg(long, env = "PAYMENTS_SHUTDOWN_GRACE", default_value = "10s")]
    pub shutdown_grace: String,
    /// Timeout of each Novasend call (at most 30s).
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

/// Settings of the Novasend sandbox: `payments-gateway sandbox`, or `serve` without
/// NOVASEND_BASE_URL. Under `serve` the flags carry a `sandbox-` prefix.
#[derive(Debug, Clone, Default, Args)]
pub struct SandboxArgs {
    /// Sandbox listen address.
    #[arg(
        long = "sandbox-addr",
        visible_alias = "addr",
        env = "SANDBOX_ADDR",
        default_value = "127.0.0.1:8090"
    )]
    pub addr: String,
    /// Credentials the sandbox accepts (Basic auth).
    #[arg(
        long = "sandbox-api-key",
        visible_alias = "api-key",
        env = "SANDBOX_API_KEY",
        default_value = "sandbox-api-key",
        hide_env_values = true
    )]
    pub api_key: String,
    #[arg(
        long = "sandbox-api-client",
        visible_alias = "api-client",
        env = "SANDBOX_API_CLIENT",
        default_value = "sandbox-api-client",
        hide_env_values = true
    )]
    pub api_client: String,
    /// Fee in percent of the amount, rounded up.
    #[arg(
        long = "sandbox-fee-percent",
        visible_alias = "fee-percent",
        env = "SANDBOX_FEE_PERCENT",
        default_value = "2"
    )]
    pub fee_percent: String,
    /// 2026 (`id: pr_…`) or 2025 (`reference: tr_…`).
    #[arg(
        long = "sandbox-response-shape",
        visible_alias = "response-shape",
        env = "SANDBOX_RESPONSE_SHAPE",
        default_value = "2026"
    )]
    pub response_shape: String,
    /// Pause between the steps of a payin's life (accepted → processed → completed).
    #[arg(
        long = "sandbox-step-delay",
        visible_alias = "step-delay",
        env = "SANDBOX_STEP_DELAY",
        default_value = "2s"
    )]
    pub step_delay: String,
    /// How long a payin waits for its payer before it expires.
    #[arg(
        long = "sandbox-expiry",
        visible_alias = "expiry",
        env = "SANDBOX_EXPIRY",
        default_value = "10m"
    )]
    pub expiry: String,
    /// Where the sandbox POSTs webhooks (in process: the service's own endpoint).
    #[arg(
        long = "sandbox-webhook-url",
        visible_alias = "webhook-url",
        env = "SANDBOX_WEBHOOK_URL"
    )]
    pub webhook_url: Option<String>,
    /// Signs webhooks (in process: NOVASEND_WEBHOOK_SECRET).
    #[arg(
        long = "sandbox-webhook-secret",
        visible_alias = "webhook-secret",
        env = "SANDBOX_WEBHOOK_SECRET",
        hide_env_values = true
    )]
    pub webhook_secret: Option<String>,
    /// Faults from the start, e.g. `kind=status,status=503,count=2` (`;` between several).
    #[arg(
        long = "sandbox-fault",
        visible_alias = "fault",
        env = "SANDBOX_FAULTS",
        value_delimiter = ';'
    )]
    pub faults: Vec<String>,
}

impl SandboxArgs {
    /// Checks every value; the error lists one line per bad variable.
    pub fn to_config(
        &self,
        countries: &Countries,
    ) -> Result<(SocketAddr, SandboxConfig), Vec<String>> {
        let mut errors = Vec::new();
        let addr = parse_addr(&self.addr)
            .map_err(|e| errors.push(format!("SANDBOX_ADDR: {e}")))
            .ok();
        let fee_percent = self
            .fee_percent
            .parse::<u32>()
            .ok()
            .filter(|p| *p <= 100)
            .ok_or_else(|| {
                errors.push(format!(
                    "SANDBOX_FEE_PERCENT: `{}` is not a whole percentage 0..=100",
                    self.fee_percent
                ))
            })
            .ok();
        let shape = match self.response_shape.as_str() {
            "2026" => Some(ResponseShape::Shape2026),
            "2025" => Some(ResponseShape::Shape2025),
            other => {
                errors.push(format!(
                    "SANDBOX_RESPONSE_SHAPE: `{other}` is neither 2025 nor 2026"
                ));
                None
            }
        };
        let hour = Duration::from_secs(3600);
        let step_delay = parse_duration(&self.step_delay, Duration::ZERO, hour)
            .map_err(|e| errors.push(format!("SANDBOX_STEP_DELAY: {e}")))
            .ok();
        let expiry = parse_duration(
            &self.expiry,
            Duration::from_millis(1),
            Duration::from_secs(86_400),
        )
        .map_err(|e| errors.push(format!("SANDBOX_EXPIRY: {e}")))
        .ok();
        if let Some(url) = &self.webhook_url
            && url::Url::parse(url).is_err()
        {
            errors.push("SANDBOX_WEBHOOK_URL: must be an absolute URL".into());
        }
        let mut faults = Vec::new();
        for spec in self.faults.iter().filter(|s| !s.trim().is_empty()) {
            match Fault::parse(spec) {
                Ok(fault) => faults.push(fault),
                Err(e) => errors.push(format!("SANDBOX_FAULTS: {e}")),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok((
            addr.expect("checked"),
            SandboxConfig {
                api_key: SecretString::from(self.api_key.clone()),
                api_client: SecretString::from(self.api_client.clone()),
                fee_percent: fee_percent.expect("checked"),
                shape: shape.expect("checked"),
                step_delay: step_delay.expect("checked"),
                expiry: expiry.expect("checked"),
                webhook_url: self.webhook_url.clone(),
                webhook_secret: self.webhook_secret.clone().map(SecretString::from),
                countries: countries.clone(),
                faults,
            },
        ))
    }
}

/// Where the service keeps shared state.
#[derive(Clone)]
pub enum StoreConfig {
    Redis(SecretString),
    InProcess,
}

/// PEM material for TLS on the gRPC port.
#[derive(Clone)]
pub struct TlsConfig {
    pub cert: Vec<u8>,
    pub key: SecretString,
    /// With a client CA, callers must present a certificate (mTLS).
    pub client_ca: Option<Vec<u8>>,
}

/// Protection against overload: everything is bounded, nothing queues without limit.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_concurrent_per_connection: usize,
    pub max_in_flight: usize,
    pub request_timeout: Duration,
    pub max_streams: usize,
    pub max_message_bytes: usize,
    pub keepalive_interval: Duration,
    pub keepalive_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_concurrent_per_connection: 1024,
            max_in_flight: 512,
            request_timeout: Duration::from_secs(60),
            max_streams: 10_000,
            max_message_bytes: 64 * 1024,
            keepalive_interval: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Clone)]
pub struct Config {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub store: StoreConfig,
    /// `None`: the built-in sandbox, started in process on `sandbox_addr`.
    pub novasend: Option<NovasendConfig>,
    pub sandbox_addr: SocketAddr,
    pub sandbox: SandboxConfig,
    /// Empty: webhook signatures are not checked.
    pub webhook_secrets: WebhookSecrets,
    pub shutdown_grace: Duration,
    pub countries: Countries,
    pub log_format: LogFormat,
    pub payments: PaymentsSettings,
    pub otlp: Option<OtlpConfig>,
    /// Empty: no caller authentication.
    pub auth_tokens: Vec<SecretString>,
    pub tls: Option<TlsConfig>,
    pub limits: Limits,
}

const MIN_POLL_INTERVAL: Duration = Duration::from_secs(5);
/// Unwatched non-terminal payins are first reconciled this long after they were saved.
/// How long a running attempt holds its idempotency record without renewing it: an attempt
/// whose replica died is taken over after this (docs/decisions.md).
const ATTEMPT_LEASE: Duration = Duration::from_secs(10);
const RECONCILE_AFTER: Duration = Duration::from_secs(30);
const MAX_UPSTREAM_TIMEOUT: Duration = Duration::from_secs(30);

impl Config {
    /// Checks every value; the error lists one line per bad variable.
    pub fn from_args(args: &ServeArgs) -> Result<Self, Vec<String>> {
        let mut errors = Vec::new();
        let mut check = |variable: &str, result: Result<(), String>| {
            if let Err(e) = result {
                errors.push(format!("{variable}: {e}"));
            }
        };
        let mut grpc_addr = None;
        check(
            "PAYMENTS_GRPC_ADDR",
            parse_addr(&args.grpc_addr).map(|a| grpc_addr = Some(a)),
        );
        let mut http_addr = None;
        check(
            "PAYMENTS_HTTP_ADDR",
            parse_addr(&args.http_addr).map(|a| http_addr = Some(a)),
        );

        let mut store = StoreConfig::InProcess;
        if let Some(url) = args.redis_url.as_deref().filter(|u| !u.is_empty()) {
            let valid = url.starts_with("redis://") || url.starts_with("rediss://");
            check(
                "PAYMENTS_REDIS_URL",
                valid
                    .then(|| store = StoreConfig::Redis(SecretString::from(url.to_owned())))
                    .ok_or_else(|| "must start with redis:// or rediss://".to_owned()),
            );
        }

        let mut durations = [
            (
                "PAYMENTS_POLL_INTERVAL",
                &args.poll_interval,
                MIN_POLL_INTERVAL,
                Duration::from_secs(3600),
                Duration::ZERO,
            ),
            (
                "PAYMENTS_SHUTDOWN_GRACE",
                &args.shutdown_grace,
                Duration::ZERO,
                Duration::from_secs(3600),
                Duration::ZERO,
            ),
            (
                "PAYMENTS_UPSTREAM_TIMEOUT",
                &args.upstream_timeout,
                Duration::from_millis(100),
                MAX_UPSTREAM_TIMEOUT,
                Duration::ZERO,
            ),
            (
                "PAYMENTS_IDEMPOTENCY_TTL",
                &args.idempotency_ttl,
                Duration::from_secs(60),
                Duration::from_secs(90 * 86_400),
                Duration::ZERO,
            ),
            (
                "PAYMENTS_IDEMPOTENCY_WAIT",
                &args.idempotency_wait,
                Duration::from_millis(100),
                Duration::from_secs(60),
                Duration::ZERO,
            ),
            (
                "PAYMENTS_PAYIN_TTL",
                &args.payin_ttl,
                Duration::from_secs(3600),
                Duration::from_secs(400 * 86_400),
                Duration::ZERO,
            ),
        ];
        for (variable, raw, min, max, parsed) in durations.iter_mut() {
            check(
                variable,
                parse_duration(raw, *min, *max).map(|d| *parsed = d),
            );
        }
        let [
            poll_interval,
            shutdown_grace,
            upstream_timeout,
            idempotency_ttl,
            idempotency_wait,
            payin_ttl,
        ] = durations.map(|d| d.4);

        let mut countries = None;
        check(
            "PAYMENTS_COUNTRIES",
            Countries::parse(&args.countries).map(|c| countries = Some(c)),
        );

        let mut log_format = LogFormat::Text;
        check(
            "PAYMENTS_LOG_FORMAT",
            match args.log_format.as_str() {
                "text" => Ok(()),
                "json" => {
                    log_format = LogFormat::Json;
                    Ok(())
                }
                other => Err(format!("`{other}` is neither text nor json")),
            },
        );

        let mut secret =
            |variable: &str, value: &Option<String>, file: &Option<String>| match read_secret(
                variable, value, file,
            ) {
                Ok(secret) => secret,
                Err(e) => {
                    errors.push(e);
                    None
                }
            };
        let api_key = secret(
            "NOVASEND_API_KEY",
            &args.novasend_api_key,
            &args.novasend_api_key_file,
        );
        let api_client = secret(
            "NOVASEND_API_CLIENT",
            &args.novasend_api_client,
            &args.novasend_api_client_file,
        );
        let webhook_secrets = secret(
            "NOVASEND_WEBHOOK_SECRET",
            &args.novasend_webhook_secret,
            &args.novasend_webhook_secret_file,
        )
        .map_or(Ok(WebhookSecrets::default()), |raw| {
            WebhookSecrets::parse(raw.expose_secret())
        })
        .unwrap_or_else(|e| {
            errors.push(format!("NOVASEND_WEBHOOK_SECRET: {e}"));
            WebhookSecrets::default()
        });

        let mut novasend = None;
        if let Some(raw) = args.novasend_base_url.as_deref().filter(|u| !u.is_empty()) {
            match url::Url::parse(raw) {
                // Credentials in the URL would be logged and sent with every call: they
                // belong in NOVASEND_API_KEY and NOVASEND_API_CLIENT.
                Ok(url) if !url.username().is_empty() || url.password().is_some() => errors.push(
                    "NOVASEND_BASE_URL: must not carry credentials (user:password@); use NOVASEND_API_KEY and NOVASEND_API_CLIENT".into(),
                ),
                Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => {
                    match (api_key, api_client) {
                        (Some(api_key), Some(api_client)) => {
                            novasend = Some(NovasendConfig {
                                base_url: url,
                                api_key,
                                api_client,
                                timeout: upstream_timeout,
                            })
                        }
                        (key, client) => {
                            if key.is_none() {
                                errors.push(
                                    "NOVASEND_API_KEY: required when NOVASEND_BASE_URL is set"
                                        .into(),
                                );
                            }
                            if client.is_none() {
                                errors.push(
                                    "NOVASEND_API_CLIENT: required when NOVASEND_BASE_URL is set"
                                        .into(),
                                );
                            }
                        }
                    }
                }
                _ => errors.push("NOVASEND_BASE_URL: must be an absolute http(s) URL".into()),
            }
        }

        let countries = countries.unwrap_or_default();
        let sandbox = args
            .sandbox
            .to_config(&countries)
            .map_err(|e| errors.extend(e))
            .ok();

        let otlp = args
            .otel_exporter_otlp_endpoint
            .as_deref()
            .filter(|e| !e.is_empty())
            .and_then(|endpoint| match url::Url::parse(endpoint) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => Some(OtlpConfig {
                    endpoint: endpoint.to_owned(),
                    service_name: args.otel_service_name.clone(),
                }),
                _ => {
                    errors.push(
                        "OTEL_EXPORTER_OTLP_ENDPOINT: must be an http(s) URL such as http://otel-collector:4317".into(),
                    );
                    None
                }
            });
        let auth_tokens = match read_secret(
            "PAYMENTS_AUTH_TOKENS",
            &args.auth_tokens,
            &args.auth_tokens_file,
        ) {
            Ok(Some(tokens)) => {
                use secrecy::ExposeSecret;
                let tokens: Vec<SecretString> = tokens
                    .expose_secret()
                    .split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(|t| SecretString::from(t.to_owned()))
                    .collect();
                if tokens.is_empty() {
                    errors.push("PAYMENTS_AUTH_TOKENS: set but holds no token".into());
                }
                tokens
            }
            Ok(None) => Vec::new(),
            Err(e) => {
                errors.push(e);
                Vec::new()
            }
        };
        let tls = read_tls(args).map_err(|e| errors.extend(e)).ok().flatten();
        let limits = read_limits(args, upstream_timeout)
            .map_err(|e| errors.extend(e))
            .ok();

        if !errors.is_empty() {
            return Err(errors);
        }
        let (sandbox_addr, mut sandbox) = sandbox.expect("checked");
        if sandbox.webhook_secret.is_none() {
            sandbox.webhook_secret = webhook_secrets.first().cloned();
        }
        Ok(Config {
            grpc_addr: grpc_addr.expect("checked"),
            http_addr: http_addr.expect("checked"),
            store,
            novasend,
            webhook_secrets,
            shutdown_grace,
            countries,
            sandbox_addr,
            sandbox,
            otlp,
            auth_tokens,
            tls,
            limits: limits.expect("checked"),
            log_format,
            payments: PaymentsSettings {
                reconcile_after: RECONCILE_AFTER,
                attempt_lease: ATTEMPT_LEASE,
                poll_interval,
                idempotency_ttl,
                idempotency_wait,
                upstream_timeout,
                payin_ttl,
            },
        })
    }
}

fn read_tls(args: &ServeArgs) -> Result<Option<TlsConfig>, Vec<String>> {
    let read = |variable: &str, path: &Option<String>| -> Result<Option<Vec<u8>>, String> {
        match path.as_deref().filter(|p| !p.is_empty()) {
            None => Ok(None),
            Some(path) => std::fs::read(path)
                .map(Some)
                .map_err(|e| format!("{variable}: cannot read `{path}`: {}", e.kind())),
        }
    };
    let mut errors = Vec::new();
    let cert = read("PAYMENTS_TLS_CERT", &args.tls_cert)
        .map_err(|e| errors.push(e))
        .ok()
        .flatten();
    let key = read("PAYMENTS_TLS_KEY", &args.tls_key)
        .map_err(|e| errors.push(e))
        .ok()
        .flatten();
    let client_ca = read("PAYMENTS_TLS_CLIENT_CA", &args.tls_client_ca)
        .map_err(|e| errors.push(e))
        .ok()
        .flatten();
    for (variable, pem) in [
        ("PAYMENTS_TLS_CERT", &cert),
        ("PAYMENTS_TLS_KEY", &key),
        ("PAYMENTS_TLS_CLIENT_CA", &client_ca),
    ] {
        if pem.as_ref().is_some_and(|p| !p.starts_with(b"-----BEGIN")) {
            errors.push(format!("{variable}: not a PEM file"));
        }
    }
    match (cert, key) {
        _ if !errors.is_empty() => Err(errors),
        (Some(cert), Some(key)) => Ok(Some(TlsConfig {
            cert,
            key: SecretString::from(String::from_utf8_lossy(&key).into_owned()),
            client_ca,
        })),
        (None, None) if client_ca.is_none() => Ok(None),
        (None, None) => Err(vec![
            "PAYMENTS_TLS_CLIENT_CA: needs PAYMENTS_TLS_CERT and PAYMENTS_TLS_KEY".into(),
        ]),
        (None, Some(_)) => Err(vec![
            "PAYMENTS_TLS_CERT: required with PAYMENTS_TLS_KEY".into(),
        ]),
        (Some(_), None) => Err(vec![
            "PAYMENTS_TLS_KEY: required with PAYMENTS_TLS_CERT".into(),
        ]),
    }
}

fn read_limits(args: &ServeArgs, upstream_timeout: Duration) -> Result<Limits, Vec<String>> {
    let mut errors = Vec::new();
    let mut count = |variable: &str, raw: &str, max: usize| {
        raw.trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                errors.push(format!(
                    "{variable}: `{raw}` is not a whole number in 1..={max}"
                ))
            })
            .unwrap_or(1)
    };
    let max_concurrent_per_connection = count(
        "PAYMENTS_MAX_CONCURRENT_PER_CONNECTION",
        &args.max_concurrent_per_connection,
        10_000,
    );
    let max_in_flight = count("PAYMENTS_MAX_IN_FLIGHT", &args.max_in_flight, 1_000_000);
    let max_streams = count("PAYMENTS_MAX_STREAMS", &args.max_streams, 1_000_000);
    let max_message_bytes = count(
        "PAYMENTS_MAX_MESSAGE_BYTES",
        &args.max_message_bytes,
        16 * 1024 * 1024,
    );
    let mut duration = |variable: &str, raw: &str, min: Duration, max: Duration| {
        parse_duration(raw, min, max)
            .map_err(|e| errors.push(format!("{variable}: {e}")))
            .unwrap_or(min)
    };
    // A call must outlive its upstream call and the reconciliation that may follow.
    let request_timeout = duration(
        "PAYMENTS_REQUEST_TIMEOUT",
        &args.request_timeout,
        upstream_timeout * 2,
        Duration::from_secs(600),
    );
    let keepalive_interval = duration(
        "PAYMENTS_KEEPALIVE_INTERVAL",
        &args.keepalive_interval,
        Duration::from_secs(1),
        Duration::from_secs(3600),
    );
    let keepalive_timeout = duration(
        "PAYMENTS_KEEPALIVE_TIMEOUT",
        &args.keepalive_timeout,
        Duration::from_secs(1),
        Duration::from_secs(600),
    );
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Limits {
        max_concurrent_per_connection,
        max_in_flight,
        request_timeout,
        max_streams,
        max_message_bytes,
        keepalive_interval,
        keepalive_timeout,
    })
}

fn parse_addr(raw: &str) -> Result<SocketAddr, String> {
    raw.parse()
        .map_err(|_| format!("`{raw}` is not a host:port socket address"))
}

fn parse_duration(raw: &str, min: Duration, max: Duration) -> Result<Duration, String> {
    let d = humantime::parse_duration(raw.trim())
        .map_err(|_| format!("`{raw}` is not a duration such as 500ms, 5s, 10m or 24h"))?;
    if d < min || d > max {
        return Err(format!(
            "{} is outside {} ..= {}",
            humantime::format_duration(d),
            humantime::format_duration(min),
            humantime::format_duration(max)
        ));
    }
    Ok(d)
}

/// A secret from its variable or from the file its `_FILE` variable names (Kubernetes
/// secret mounts). The error names the variable, never the value.
fn read_secret(
    variable: &str,
    value: &Option<String>,
    file: &Option<String>,
) -> Result<Option<SecretString>, String> {
    let value = value.as_deref().filter(|v| !v.is_empty());
    let file = file.as_deref().filter(|f| !f.is_empty());
    match (value, file) {
        (Some(_), Some(_)) => Err(format!(
            "{variable}: set either {variable} or {variable}_FILE, not both"
        )),
        (Some(v), None) => Ok(Some(SecretString::from(v.to_owned()))),
        (None, Some(path)) => match std::fs::read_to_string(path) {
            Ok(content) if !content.trim().is_empty() => {
                Ok(Some(SecretString::from(content.trim().to_owned())))
            }
            Ok(_) => Err(format!("{variable}_FILE: `{path}` is empty")),
            Err(e) => Err(format!(
                "{variable}_FILE: cannot read `{path}`: {}",
                e.kind()
            )),
        },
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> ServeArgs {
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
        assert!(config.novasend.is_none());
    }

    #[test]
    fn reports_one_line_per_bad_variable() {
        let args = ServeArgs {
            grpc_addr: "nowhere".into(),
            poll_interval: "4s".into(),
            upstream_timeout: "31s".into(),
            log_format: "xml".into(),
            redis_url: Some("http://redis".into()),
            novasend_base_url: Some("https://novasend.test".into()),
            novasend_api_key: Some("k".into()),
            ..defaults()
        };
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

    #[test]
    fn refuses_credentials_in_the_novasend_url_without_echoing_them() {
        let args = ServeArgs {
            novasend_base_url: Some("https://merchant:hunter2@novasend.test".into()),
            novasend_api_key: Some("k".into()),
            novasend_api_client: Some("c".into()),
            ..defaults()
        };
        let errors = Config::from_args(&args).err().unwrap();
        assert_eq!(errors.len(), 1);
        assert!(errors[0].starts_with("NOVASEND_BASE_URL:"));
        assert!(!errors[0].contains("hunter2") && !errors[0].contains("merchant"));
    }

    #[test]
    fn webhook_secrets_are_a_list_and_a_typo_in_it_is_one_clear_line() {
        let args = ServeArgs {
            novasend_webhook_secret: Some("whsec_new, whsec_old".into()),
            ..defaults()
        };
        let config = Config::from_args(&args).unwrap();
        let mut count = 0;
        config.webhook_secrets.any(|_| {
            count += 1;
            false
        });
        assert_eq!(count, 2);
        // The in-process sandbox signs with the first (the newest).
        let signing = config.sandbox.webhook_secret.unwrap();
        assert_eq!(signing.expose_secret(), "whsec_new");
        let args = ServeArgs {
            novasend_webhook_secret: Some("whsec_new,,whsec_old".into()),
            ..defaults()
        };
        let errors = Config::from_args(&args).err().unwrap();
        assert_eq!(errors.len(), 1);
        assert!(errors[0].starts_with("NOVASEND_WEBHOOK_SECRET:"));
        assert!(!errors[0].contains("whsec"), "never echoes a secret");
    }

    #[test]
    fn reads_secrets_from_files_without_echoing_them() {
        let dir = std::env::temp_dir().join(format!("pgw-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("api-key");
        std::fs::write(&path, "file-secret-value\n").unwrap();
        let args = ServeArgs {
            novasend_base_url: Some("https://novasend.test".into()),
            novasend_api_key_file: Some(path.display().to_string()),
            novasend_api_client: Some("client".into()),
            ..defaults()
        };
        let config = Config::from_args(&args).unwrap();
        use secrecy::ExposeSecret;
        assert_eq!(
            config.novasend.unwrap().api_key.expose_secret(),
            "file-secret-value"
        );

        let both = ServeArgs {
            novasend_api_key: Some("x".into()),
            ..args
        };
        let errors = Config::from_args(&both).err().unwrap();
        assert!(errors[0].starts_with("NOVASEND_API_KEY:"));
        assert!(!errors[0].contains("file-secret-value"));
        std::fs::remove_dir_all(dir).ok();
    }
}
