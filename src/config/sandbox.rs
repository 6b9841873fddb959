//! SANDBOX_*: the provider sandbox (Novasend, and HUB2 under `/hub2`), in process under
//! `serve` or alone under `sandbox`.

use super::parse::{parse_addr, parse_duration};
use crate::domain::Countries;
use crate::provider::WebhookSecrets;
use crate::sandbox::{Fault, Hub2SandboxConfig, ResponseShape, SandboxConfig};
use clap::Args;
use secrecy::SecretString;
use std::net::SocketAddr;
use std::time::Duration;

/// Settings of the sandbox: `payments-gateway sandbox`, or `serve` without
/// NOVASEND_BASE_URL. Under `serve` the flags carry a `sandbox-` prefix; the HUB2 ones carry
/// it everywhere (`--hub2-api-key` is the service's own flag).
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
    /// HUB2's `ApiKey` the sandbox accepts.
    #[arg(
        long = "sandbox-hub2-api-key",
        env = "SANDBOX_HUB2_API_KEY",
        default_value = "sandbox-hub2-api-key",
        hide_env_values = true
    )]
    pub sandbox_hub2_api_key: String,
    /// HUB2's `MerchantId` the sandbox accepts.
    #[arg(
        long = "sandbox-hub2-merchant-id",
        env = "SANDBOX_HUB2_MERCHANT_ID",
        default_value = "sandbox-merchant",
        hide_env_values = true
    )]
    pub sandbox_hub2_merchant_id: String,
    /// Where the sandbox POSTs HUB2 webhooks (in process: the service's own endpoint).
    #[arg(long = "sandbox-hub2-webhook-url", env = "SANDBOX_HUB2_WEBHOOK_URL")]
    pub sandbox_hub2_webhook_url: Option<String>,
    /// Signs HUB2 webhooks, newest first: `s1` with the first, `s0` with the second
    /// (in process: HUB2_WEBHOOK_SECRET).
    #[arg(
        long = "sandbox-hub2-webhook-secret",
        env = "SANDBOX_HUB2_WEBHOOK_SECRET",
        hide_env_values = true
    )]
    pub sandbox_hub2_webhook_secret: Option<String>,
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
        if let Some(url) = &self.sandbox_hub2_webhook_url
            && url::Url::parse(url).is_err()
        {
            errors.push("SANDBOX_HUB2_WEBHOOK_URL: must be an absolute URL".into());
        }
        let hub2_webhook_secrets = match self.sandbox_hub2_webhook_secret.as_deref() {
            None => WebhookSecrets::default(),
            Some(raw) => WebhookSecrets::parse(raw).unwrap_or_else(|e| {
                errors.push(format!("SANDBOX_HUB2_WEBHOOK_SECRET: {e}"));
                WebhookSecrets::default()
            }),
        };
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
                hub2: Hub2SandboxConfig {
                    api_key: SecretString::from(self.sandbox_hub2_api_key.clone()),
                    merchant_id: SecretString::from(self.sandbox_hub2_merchant_id.clone()),
                    webhook_url: self.sandbox_hub2_webhook_url.clone(),
                    webhook_secrets: hub2_webhook_secrets,
                },
            },
        ))
    }
}
