//! HUB2_*: HUB2 is enabled by its base URL, with its credentials, environment and webhook
//! secrets (contract §9); without it and without NOVASEND_BASE_URL, the in-process sandbox
//! simulates HUB2 too, so HUB2 is enabled all the same.

use super::{Hub2Client, Hub2Config, Hub2Environment, NAME};
use crate::provider::PaymentProvider;
use crate::provider::setup::{Checks, ProviderApi, ProviderConfig, ProviderSetup, is_set};
use clap::Args;
use std::sync::Arc;
use std::time::Duration;

/// HUB2's flags; each mirrors its environment variable.
#[derive(Debug, Clone, Default, Args)]
pub struct Hub2Args {
    /// HUB2 base URL; unset = HUB2 not enabled (simulated by the sandbox when
    /// NOVASEND_BASE_URL is unset too).
    #[arg(long, env = "HUB2_BASE_URL")]
    pub hub2_base_url: Option<String>,
    #[arg(long, env = "HUB2_API_KEY", hide_env_values = true)]
    pub hub2_api_key: Option<String>,
    #[arg(long, env = "HUB2_API_KEY_FILE")]
    pub hub2_api_key_file: Option<String>,
    #[arg(long, env = "HUB2_MERCHANT_ID", hide_env_values = true)]
    pub hub2_merchant_id: Option<String>,
    #[arg(long, env = "HUB2_MERCHANT_ID_FILE")]
    pub hub2_merchant_id_file: Option<String>,
    /// live or sandbox (HUB2's own test mode).
    #[arg(long, env = "HUB2_ENVIRONMENT", default_value = "live")]
    pub hub2_environment: String,
    /// Enables HUB2 webhook signature checks; several comma-separated secrets in a rotation.
    #[arg(long, env = "HUB2_WEBHOOK_SECRET", hide_env_values = true)]
    pub hub2_webhook_secret: Option<String>,
    #[arg(long, env = "HUB2_WEBHOOK_SECRET_FILE")]
    pub hub2_webhook_secret_file: Option<String>,
}

impl ProviderSetup for Hub2Args {
    type Api = Hub2Config;

    fn base_url_set(&self) -> bool {
        is_set(&self.hub2_base_url)
    }

    fn read(&self, upstream_timeout: Duration) -> Result<ProviderConfig<Hub2Config>, Vec<String>> {
        let mut checks = Checks::default();
        let api_key = checks.secret("HUB2_API_KEY", &self.hub2_api_key, &self.hub2_api_key_file);
        let merchant_id = checks.secret(
            "HUB2_MERCHANT_ID",
            &self.hub2_merchant_id,
            &self.hub2_merchant_id_file,
        );
        let webhook_secrets = checks.webhook_secrets(
            "HUB2_WEBHOOK_SECRET",
            &self.hub2_webhook_secret,
            &self.hub2_webhook_secret_file,
        );
        let environment = Hub2Environment::parse(&self.hub2_environment).unwrap_or_else(|| {
            checks.push(format!(
                "HUB2_ENVIRONMENT: `{}` is neither live nor sandbox",
                self.hub2_environment
            ));
            Hub2Environment::default()
        });
        let base_url = checks.base_url(
            "HUB2_BASE_URL",
            &self.hub2_base_url,
            "HUB2_API_KEY and HUB2_MERCHANT_ID",
        );

        let credentials_given = api_key.is_some() || merchant_id.is_some();
        let mut api = None;
        match (base_url, api_key, merchant_id) {
            (Some(base_url), Some(api_key), Some(merchant_id)) => {
                api = Some(Hub2Config {
                    base_url,
                    api_key,
                    merchant_id,
                    environment,
                    timeout: upstream_timeout,
                })
            }
            (Some(_), key, merchant) => checks.require(
                "HUB2_BASE_URL",
                [
                    ("HUB2_API_KEY", key.is_none()),
                    ("HUB2_MERCHANT_ID", merchant.is_none()),
                ],
            ),
            (None, _, _) => {}
        }
        // Credentials without a URL enable nothing: most likely a forgotten HUB2_BASE_URL.
        if credentials_given && !self.base_url_set() {
            checks.push("HUB2_BASE_URL: required when HUB2 credentials are set".into());
        }
        checks.finish(ProviderConfig {
            api,
            webhook_secrets,
        })
    }
}

impl ProviderApi for Hub2Config {
    const NAME: &'static str = NAME;
    const WEBHOOK_SECRET: &'static str = "HUB2_WEBHOOK_SECRET";

    fn base_url(&self) -> &url::Url {
        &self.base_url
    }

    fn connect(self) -> Result<Arc<dyn PaymentProvider>, String> {
        Ok(Arc::new(Hub2Client::new(self)?))
    }
}

#[cfg(test)]
mod tests {
    use crate::config::tests::defaults;
    use crate::config::{Config, ServeArgs};
    use crate::provider::hub2::NAME;
    use crate::sandbox::in_process::stands_in_for;

    fn with(change: impl FnOnce(&mut ServeArgs)) -> Result<Config, Vec<String>> {
        let mut args = defaults();
        change(&mut args);
        Config::from_args(&args)
    }

    #[test]
    fn hub2_is_enabled_by_its_url_and_credentials_and_says_what_is_missing() {
        let enabled = with(|args| {
            let hub2 = &mut args.providers.hub2;
            hub2.hub2_base_url = Some("https://api.hub2.test".into());
            hub2.hub2_api_key = Some("key".into());
            hub2.hub2_merchant_id = Some("merchant".into());
            hub2.hub2_environment = "sandbox".into();
            hub2.hub2_webhook_secret = Some("new,old".into());
            args.routes = "CI:hub2,*:novasend".into();
        })
        .unwrap();
        let hub2 = enabled.providers.hub2.api.unwrap();
        assert_eq!(hub2.environment.as_str(), "sandbox");
        assert_eq!(enabled.routes.provider_for("CI"), "hub2");

        let errors = with(|args| {
            args.providers.hub2.hub2_base_url = Some("https://user:hunter2@api.hub2.test".into());
            args.providers.hub2.hub2_environment = "prod".into();
        })
        .err()
        .unwrap();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].starts_with("HUB2_ENVIRONMENT:"));
        assert!(errors[1].starts_with("HUB2_BASE_URL:") && !errors[1].contains("hunter2"));

        let errors = with(|args| {
            args.providers.hub2.hub2_base_url = Some("https://api.hub2.test".into());
        })
        .err()
        .unwrap();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors[0].starts_with("HUB2_API_KEY:") && errors[1].starts_with("HUB2_MERCHANT_ID:")
        );

        let errors = with(|args| args.providers.hub2.hub2_api_key = Some("key".into()))
            .err()
            .unwrap();
        assert_eq!(
            errors,
            ["HUB2_BASE_URL: required when HUB2 credentials are set"]
        );

        // Routing to HUB2 needs HUB2 enabled: a real Novasend and no HUB2 leaves it off.
        let errors = with(|args| {
            args.routes = "CI:hub2,*:novasend".into();
            let novasend = &mut args.providers.novasend;
            novasend.novasend_base_url = Some("https://novasend.test".into());
            novasend.novasend_api_key = Some("k".into());
            novasend.novasend_api_client = Some("c".into());
        })
        .err()
        .unwrap();
        assert!(errors[0].starts_with("PAYMENTS_ROUTES:"), "{errors:?}");
    }

    #[test]
    fn without_any_provider_url_the_sandbox_simulates_hub2_and_routes_may_lead_to_it() {
        let simulated = with(|args| args.routes = "CI:hub2,*:novasend".into()).unwrap();
        assert!(stands_in_for(&simulated.providers.without_api()).contains(&NAME));
        assert!(
            simulated.providers.hub2.api.is_none(),
            "its URL is the sandbox's, known once bound"
        );

        let real_hub2 = with(|args| {
            let hub2 = &mut args.providers.hub2;
            hub2.hub2_base_url = Some("https://api.hub2.test".into());
            hub2.hub2_api_key = Some("key".into());
            hub2.hub2_merchant_id = Some("merchant".into());
        })
        .unwrap();
        assert!(!stands_in_for(&real_hub2.providers.without_api()).contains(&NAME));
    }
}
