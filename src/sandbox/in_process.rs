//! The sandbox inside `serve`: without NOVASEND_BASE_URL it stands in for Novasend, and
//! without HUB2_BASE_URL as well for HUB2 (under `/hub2`), so the quick start needs no
//! account. The service's clients point at it and its webhooks at the service. It simulates
//! those two providers only: any other provider needs its own base URL.

use super::{SandboxConfig, SandboxHandle, hub2};
use crate::config::Config;
use crate::provider::hub2::{Hub2Config, Hub2Environment};
use crate::provider::novasend::NovasendConfig;
use crate::provider::{self, ProviderConfigs};
use tokio::net::TcpListener;

/// The providers the sandbox plays, given those without a base URL: it runs when Novasend
/// has none, and then plays each provider it simulates that has none either.
pub fn stands_in_for(without_url: &[&str]) -> Vec<&'static str> {
    if !without_url.contains(&provider::novasend::NAME) {
        return Vec::new();
    }
    [provider::novasend::NAME, provider::hub2::NAME]
        .into_iter()
        .filter(|name| without_url.contains(name))
        .collect()
}

/// Starts the sandbox on `config.sandbox_addr` when it stands in for a provider, and points
/// `providers` it stands in for at it. Its webhooks go to this service's own endpoints
/// (`http_listener`) unless SANDBOX_WEBHOOK_URL / SANDBOX_HUB2_WEBHOOK_URL say otherwise.
pub async fn stand_in(
    config: &Config,
    providers: &mut ProviderConfigs,
    http_listener: &TcpListener,
) -> Result<Option<SandboxHandle>, String> {
    let simulated = stands_in_for(&providers.without_api());
    if simulated.is_empty() {
        return Ok(None);
    }
    let simulates_hub2 = simulated.contains(&provider::hub2::NAME);
    let mut sandbox = config.sandbox.clone();
    let mut own = http_listener.local_addr().map_err(|e| e.to_string())?;
    if own.ip().is_unspecified() {
        own.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    if sandbox.webhook_url.is_none() {
        sandbox.webhook_url = Some(format!("http://{own}/webhooks/novasend"));
    }
    if simulates_hub2 && sandbox.hub2.webhook_url.is_none() {
        sandbox.hub2.webhook_url = Some(format!("http://{own}/webhooks/hub2"));
    }
    share_webhook_secrets(&mut sandbox, providers, simulates_hub2);
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
    providers.novasend.api = Some(NovasendConfig {
        base_url: base_url("")?,
        api_key: sandbox.api_key,
        api_client: sandbox.api_client,
        timeout: config.payments.upstream_timeout,
    });
    tracing::warn!(sandbox = %handle.base_url(), "NOVASEND_BASE_URL is unset: using the built-in Novasend sandbox");
    if simulates_hub2 {
        let hub2_config = Hub2Config {
            base_url: base_url(hub2::PREFIX)?,
            api_key: sandbox.hub2.api_key,
            merchant_id: sandbox.hub2.merchant_id,
            environment: Hub2Environment::Sandbox,
            timeout: config.payments.upstream_timeout,
        };
        tracing::warn!(sandbox = %hub2_config.base_url, "HUB2_BASE_URL is unset too: the sandbox simulates HUB2");
        providers.hub2.api = Some(hub2_config);
    }
    Ok(Some(handle))
}

/// The sandbox signs Novasend's webhooks with the newest of the service's secrets unless
/// SANDBOX_WEBHOOK_SECRET names one. For a simulated HUB2, one set of secrets on both sides:
/// whichever side was given some, the other takes them (both given: each keeps its own,
/// e.g. to try a rotation).
fn share_webhook_secrets(
    sandbox: &mut SandboxConfig,
    providers: &mut ProviderConfigs,
    simulates_hub2: bool,
) {
    if sandbox.webhook_secret.is_none() {
        sandbox.webhook_secret = providers.novasend.webhook_secrets.first().cloned();
    }
    if !simulates_hub2 {
        return;
    }
    let service = &mut providers.hub2.webhook_secrets;
    let simulator = &mut sandbox.hub2.webhook_secrets;
    if service.is_empty() {
        *service = simulator.clone();
    } else if simulator.is_empty() {
        *simulator = service.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::WebhookSecrets;
    use secrecy::ExposeSecret;

    fn newest(secrets: &WebhookSecrets) -> Option<&str> {
        secrets.first().map(ExposeSecret::expose_secret)
    }

    #[test]
    fn the_sandbox_runs_without_a_novasend_url_and_plays_hub2_without_its_url_too() {
        let (novasend, hub2) = (provider::novasend::NAME, provider::hub2::NAME);
        assert_eq!(stands_in_for(&[novasend, hub2]), [novasend, hub2]);
        assert_eq!(stands_in_for(&[novasend]), [novasend]);
        assert!(stands_in_for(&[hub2]).is_empty());
        assert!(stands_in_for(&["another"]).is_empty());
    }

    #[test]
    fn the_sandbox_signs_with_the_services_secrets_unless_given_its_own() {
        let mut sandbox = SandboxConfig::default();
        let mut providers = ProviderConfigs::default();
        providers.novasend.webhook_secrets = WebhookSecrets::parse("whsec_new,whsec_old").unwrap();
        providers.hub2.webhook_secrets = WebhookSecrets::parse("h2_service").unwrap();
        share_webhook_secrets(&mut sandbox, &mut providers, true);
        // Novasend: signed with the newest.
        let signing = sandbox.webhook_secret.clone().unwrap();
        assert_eq!(signing.expose_secret(), "whsec_new");
        assert_eq!(newest(&sandbox.hub2.webhook_secrets), Some("h2_service"));

        // HUB2: the service takes the sandbox's when it has none; both given, each its own.
        let mut providers = ProviderConfigs::default();
        share_webhook_secrets(&mut sandbox, &mut providers, true);
        assert_eq!(newest(&providers.hub2.webhook_secrets), Some("h2_service"));
        providers.hub2.webhook_secrets = WebhookSecrets::parse("h2_other").unwrap();
        share_webhook_secrets(&mut sandbox, &mut providers, true);
        assert_eq!(newest(&providers.hub2.webhook_secrets), Some("h2_other"));
        assert_eq!(newest(&sandbox.hub2.webhook_secrets), Some("h2_service"));

        // A real HUB2 keeps its secrets, and the sandbox's HUB2 is not running.
        let mut sandbox = SandboxConfig::default();
        let mut providers = ProviderConfigs::default();
        share_webhook_secrets(&mut sandbox, &mut providers, false);
        assert!(providers.hub2.webhook_secrets.is_empty());
        assert!(sandbox.hub2.webhook_secrets.is_empty());
    }
}
