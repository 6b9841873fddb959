//! Configuration from the environment, mirrored by command-line flags (contract §6).
//! Every value is read as text first so that all bad values are reported, one line each.

use crate::domain::Countries;
use crate::payments::PaymentsSettings;
use crate::provider::novasend::NovasendConfig;
use crate::telemetry::LogFormat;
use clap::Args;
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
    /// Enables webhook signature checks.
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
}

/// Where the service keeps shared state.
#[derive(Clone)]
pub enum StoreConfig {
    Redis(SecretString),
    InProcess,
}

#[derive(Clone)]
pub struct Config {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub store: StoreConfig,
    /// `None`: the built-in sandbox.
    pub novasend: Option<NovasendConfig>,
    pub webhook_secret: Option<SecretString>,
    pub shutdown_grace: Duration,
    pub countries: Countries,
    pub log_format: LogFormat,
    pub payments: PaymentsSettings,
}

const MIN_POLL_INTERVAL: Duration = Duration::from_secs(5);
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
        let webhook_secret = secret(
            "NOVASEND_WEBHOOK_SECRET",
            &args.novasend_webhook_secret,
            &args.novasend_webhook_secret_file,
        );

        let mut novasend = None;
        if let Some(raw) = args.novasend_base_url.as_deref().filter(|u| !u.is_empty()) {
            match url::Url::parse(raw) {
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

        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Config {
            grpc_addr: grpc_addr.expect("checked"),
            http_addr: http_addr.expect("checked"),
            store,
            novasend,
            webhook_secret,
            shutdown_grace,
            countries: countries.expect("checked"),
            log_format,
            payments: PaymentsSettings {
                poll_interval,
                idempotency_ttl,
                idempotency_wait,
                upstream_timeout,
                payin_ttl,
            },
        })
    }
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
