//! NOVASEND_*: the real Novasend (base URL and credentials) and the webhook secrets. Without
//! NOVASEND_BASE_URL the in-process sandbox stands in for Novasend.

use super::{NAME, NovasendClient, NovasendConfig};
use crate::provider::PaymentProvider;
use crate::provider::setup::{Checks, ProviderApi, ProviderConfig, ProviderSetup, is_set};
use clap::Args;
use std::sync::Arc;
use std::time::Duration;

/// Novasend's flags; each mirrors its environment variable.
#[derive(Debug, Clone, Default, Args)]
pub struct NovasendArgs {
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
}

impl ProviderSetup for NovasendArgs {
    type Api = NovasendConfig;

    fn base_url_set(&self) -> bool {
        is_set(&self.novasend_base_url)
    }

    fn read(
        &self,
        upstream_timeout: Duration,
    ) -> Result<ProviderConfig<NovasendConfig>, Vec<String>> {
        let mut checks = Checks::default();
        let api_key = checks.secret(
            "NOVASEND_API_KEY",
            &self.novasend_api_key,
            &self.novasend_api_key_file,
        );
        let api_client = checks.secret(
            "NOVASEND_API_CLIENT",
            &self.novasend_api_client,
            &self.novasend_api_client_file,
        );
        let webhook_secrets = checks.webhook_secrets(
            "NOVASEND_WEBHOOK_SECRET",
            &self.novasend_webhook_secret,
            &self.novasend_webhook_secret_file,
        );
        let base_url = checks.base_url(
            "NOVASEND_BASE_URL",
            &self.novasend_base_url,
            "NOVASEND_API_KEY and NOVASEND_API_CLIENT",
        );
        let mut api = None;
        if let Some(base_url) = base_url {
            match (api_key, api_client) {
                (Some(api_key), Some(api_client)) => {
                    api = Some(NovasendConfig {
                        base_url,
                        api_key,
                        api_client,
                        timeout: upstream_timeout,
                    })
                }
                (key, client) => checks.require(
                    "NOVASEND_BASE_URL",
                    [
                        ("NOVASEND_API_KEY", key.is_none()),
                        ("NOVASEND_API_CLIENT", client.is_none()),
                    ],
                ),
            }
        }
        checks.finish(ProviderConfig {
            api,
            webhook_secrets,
        })
    }
}

impl ProviderApi for NovasendConfig {
    const NAME: &'static str = NAME;
    const WEBHOOK_SECRET: &'static str = "NOVASEND_WEBHOOK_SECRET";

    fn base_url(&self) -> &url::Url {
        &self.base_url
    }

    fn connect(self) -> Result<Arc<dyn PaymentProvider>, String> {
        Ok(Arc::new(NovasendClient::new(self)?))
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::config::tests::defaults;
    use secrecy::ExposeSecret;

    #[test]
    fn refuses_credentials_in_the_novasend_url_without_echoing_them() {
        let mut args = defaults();
        let novasend = &mut args.providers.novasend;
        novasend.novasend_base_url = Some("https://merchant:hunter2@novasend.test".into());
        novasend.novasend_api_key = Some("k".into());
        novasend.novasend_api_client = Some("c".into());
        let errors = Config::from_args(&args).err().unwrap();
        assert_eq!(errors.len(), 1);
        assert!(errors[0].starts_with("NOVASEND_BASE_URL:"));
        assert!(!errors[0].contains("hunter2") && !errors[0].contains("merchant"));
    }

    #[test]
    fn webhook_secrets_are_a_list_and_a_typo_in_it_is_one_clear_line() {
        let mut args = defaults();
        args.providers.novasend.novasend_webhook_secret = Some("whsec_new, whsec_old".into());
        let config = Config::from_args(&args).unwrap();
        let mut count = 0;
        config.providers.novasend.webhook_secrets.any(|_| {
            count += 1;
            false
        });
        assert_eq!(count, 2);
        args.providers.novasend.novasend_webhook_secret = Some("whsec_new,,whsec_old".into());
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
        let mut args = defaults();
        let novasend = &mut args.providers.novasend;
        novasend.novasend_base_url = Some("https://novasend.test".into());
        novasend.novasend_api_key_file = Some(path.display().to_string());
        novasend.novasend_api_client = Some("client".into());
        let config = Config::from_args(&args).unwrap();
        assert_eq!(
            config
                .providers
                .novasend
                .api
                .unwrap()
                .api_key
                .expose_secret(),
            "file-secret-value"
        );

        args.providers.novasend.novasend_api_key = Some("x".into());
        let errors = Config::from_args(&args).err().unwrap();
        assert!(errors[0].starts_with("NOVASEND_API_KEY:"));
        assert!(!errors[0].contains("file-secret-value"));
        std::fs::remove_dir_all(dir).ok();
    }
}
