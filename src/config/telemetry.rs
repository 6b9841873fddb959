//! PAYMENTS_LOG_FORMAT and OTEL_*: logs and trace export.

use super::ServeArgs;
use crate::telemetry::{LogFormat, OtlpConfig};

pub(super) fn read_log_format(args: &ServeArgs) -> Result<LogFormat, Vec<String>> {
    match args.log_format.as_str() {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        other => Err(vec![format!(
            "PAYMENTS_LOG_FORMAT: `{other}` is neither text nor json"
        )]),
    }
}

/// `None`: traces are not exported.
pub(super) fn read_otlp(args: &ServeArgs) -> Result<Option<OtlpConfig>, Vec<String>> {
    let Some(endpoint) = args
        .otel_exporter_otlp_endpoint
        .as_deref()
        .filter(|e| !e.is_empty())
    else {
        return Ok(None);
    };
    match url::Url::parse(endpoint) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(Some(OtlpConfig {
            endpoint: endpoint.to_owned(),
            service_name: args.otel_service_name.clone(),
        })),
        _ => Err(vec![
            "OTEL_EXPORTER_OTLP_ENDPOINT: must be an http(s) URL such as http://otel-collector:4317".into(),
        ]),
    }
}
