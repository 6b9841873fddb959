//! The sandbox inside `serve`: without NOVASEND_BASE_URL it stands in for Novasend, and
//! without HUB2_BASE_URL as well for HUB2 (under `/hub2`), so the quick start needs no
//! account. The service's clients point at it and its webhooks at the service.

use super::{SandboxHandle, hub2};
use crate::config::Config;
use crate::provider::WebhookSecrets;
use crate::provider::hub2::{Hub2Config, Hub2Environment};
use crate::provider::novasend::NovasendConfig;
use tokio::net::TcpListener;

/// The running sandbox and how the service reaches it.
pub struct InProcess {
    pub handle: SandboxHandle,
    pub novasend: NovasendConfig,
    /// HUB2 at the sandbox, with the webhook secrets the service checks; `None` when
    /// HUB2_BASE_URL names a real HUB2 (or none is wanted).
    pub hub2: Option<(Hub2Config, WebhookSecrets)>,
}

/// Starts the sandbox on `config.sandbox_addr`. Its webhooks go to this service's own
/// endpoints (`http_listener`) unless SANDBOX_WEBHOOK_URL / SANDBOX_HUB2_WEBHOOK_URL say
/// otherwise.
pub async fn start(config: &Config, http_listener: &TcpListener) -> Result<InProcess, String> {
    let mut sandbox = config.sandbox.clone();
    let mut own = http_listener.local_addr().map_err(|e| e.to_string())?;
    if own.ip().is_unspecified() {
        own.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    if sandbox.webhook_url.is_none() {
        sandbox.webhook_url = Some(format!("http://{own}/webhooks/novasend"));
    }
    let simulates_hub2 = config.sandbox_simulates_hub2();
    // One set of HUB2 secrets on both sides: whichever side was given some, the other
    // takes them (both given: each keeps its own, e.g. to try a rotation).
    let service_secrets = match config.hub2_webhook_secrets.is_empty() {
        true => sandbox.hub2.webhook_secrets.clone(),
        false => config.hub2_webhook_secrets.clone(),
    };
    if simulates_hub2 {
        if sandbox.hub2.webhook_url.is_none() {
            sandbox.hub2.webhook_url = Some(format!("http://{own}/webhooks/hub2"));
        }
        if sandbox.hub2.webhook_secrets.is_empty() {
            sandbox.hub2.webhook_secrets = config.hub2_webhook_secrets.clone();
        }
    }
    let listener = TcpListener::bind(config.sandbox_addr).await.map_err(|e| {
        format!(
            "cannot listen on {} for the sandbox: {e}",
            config.sandbox_addr
        )
    })?;
    let handle = super::start(listener, sandbox.clone())?;
    let base_url = |path: &str| {
        format!("{}{path}", handle.base_url())
            .parse::<url::Url>()
            .map_err(|e| format!("sandbox URL: {e}"))
    };
    let novasend = NovasendConfig {
        base_url: base_url("")?,
        api_key: sandbox.api_key,
        api_client: sandbox.api_client,
        timeout: config.payments.upstream_timeout,
    };
    tracing::warn!(sandbox = %handle.base_url(), "NOVASEND_BASE_URL is unset: using the built-in Novasend sandbox");
    let hub2 = match simulates_hub2 {
        false => None,
        true => {
            let hub2_config = Hub2Config {
                base_url: base_url(hub2::PREFIX)?,
                api_key: sandbox.hub2.api_key,
                merchant_id: sandbox.hub2.merchant_id,
                environment: Hub2Environment::Sandbox,
                timeout: config.payments.upstream_timeout,
            };
            tracing::warn!(sandbox = %hub2_config.base_url, "HUB2_BASE_URL is unset too: the sandbox simulates HUB2");
            Some((hub2_config, service_secrets))
        }
    };
    Ok(InProcess {
        handle,
        novasend,
        hub2,
    })
}
