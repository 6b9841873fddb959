//! HUB2_*: HUB2 is enabled by its base URL, with its credentials, environment and webhook
//! secrets (contract §9); without it and without NOVASEND_BASE_URL, the in-process sandbox
//! simulates HUB2 too, so HUB2 is enabled all the same.

use super::parse::{provider_base_url, read_secret, webhook_secrets};
use super::{Config, ServeArgs};
use crate::provider::WebhookSecrets;
use crate::provider::hub2::{Hub2Config, Hub2Environment};
use std::time::Duration;

/// Whether HUB2 is enabled: by its URL, or by the sandbox that stands in for both providers
/// when neither has a URL.
pub(super) fn hub2_enabled(args: &ServeArgs) -> bool {
    let set = |url: &Option<String>| url.as_deref().is_some_and(|u| !u.is_empty());
    set(&args.hub2_base_url) || !set(&args.novasend_base_url)
}

impl Config {
    /// No provider URL at all: the in-process sandbox plays HUB2 as well as Novasend.
    pub fn sandbox_simulates_hub2(&self) -> bool {
        self.novasend.is_none() && self.hub2.is_none()
    }
}

/// HUB2's API (`None`: not enabled, or simulated by the sandbox), and its webhook secrets.
pub(super) fn read_hub2(
    args: &ServeArgs,
    upstream_timeout: Duration,
) -> Result<(Option<Hub2Config>, WebhookSecrets), Vec<String>> {
    let mut errors = Vec::new();
    let mut secret = |variable: &str, value: &Option<String>, file: &Option<String>| {
        read_secret(variable, value, file).unwrap_or_else(|e| {
            errors.push(e);
            None
        })
    };
    let api_key = secret("HUB2_API_KEY", &args.hub2_api_key, &args.hub2_api_key_file);
    let merchant_id = secret(
        "HUB2_MERCHANT_ID",
        &args.hub2_merchant_id,
        &args.hub2_merchant_id_file,
    );
    let raw_secrets = secret(
        "HUB2_WEBHOOK_SECRET",
        &args.hub2_webhook_secret,
        &args.hub2_webhook_secret_file,
    );
    let secrets = webhook_secrets("HUB2_WEBHOOK_SECRET", raw_secrets).unwrap_or_else(|e| {
        errors.push(e);
        WebhookSecrets::default()
    });
    let environment = Hub2Environment::parse(&args.hub2_environment).unwrap_or_else(|| {
        errors.push(format!(
            "HUB2_ENVIRONMENT: `{}` is neither live nor sandbox",
            args.hub2_environment
        ));
        Hub2Environment::default()
    });

    let mut hub2 = None;
    match args.hub2_base_url.as_deref().filter(|u| !u.is_empty()) {
        Some(raw) => match provider_base_url(raw, "HUB2_API_KEY and HUB2_MERCHANT_ID") {
            Err(e) => errors.push(format!("HUB2_BASE_URL: {e}")),
            Ok(base_url) => match (api_key, merchant_id) {
                (Some(api_key), Some(merchant_id)) => {
                    hub2 = Some(Hub2Config {
                        base_url,
                        api_key,
                        merchant_id,
                        environment,
                        timeout: upstream_timeout,
                    })
                }
                (key, merchant) => {
                    for (missing, variable) in [
                        (key.is_none(), "HUB2_API_KEY"),
                        (merchant.is_none(), "HUB2_MERCHANT_ID"),
                    ] {
                        if missing {
                            errors.push(format!("{variable}: required when HUB2_BASE_URL is set"));
                        }
                    }
                }
            },
        },
        // Credentials without a URL enable nothing: most likely a forgotten HUB2_BASE_URL.
        None if api_key.is_some() || merchant_id.is_some() => {
            errors.push("HUB2_BASE_URL: required when HUB2 credentials are set".into())
        }
        None => {}
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok((hub2, secrets))
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::config::ServeArgs;
    use crate::config::tests::defaults;

    #[test]
    fn hub2_is_enabled_by_its_url_and_credentials_and_says_what_is_missing() {
        let enabled = Config::from_args(&ServeArgs {
            hub2_base_url: Some("https://api.hub2.test".into()),
            hub2_api_key: Some("key".into()),
            hub2_merchant_id: Some("merchant".into()),
            hub2_environment: "sandbox".into(),
            hub2_webhook_secret: Some("new,old".into()),
            routes: "CI:hub2,*:novasend".into(),
            ..defaults()
        })
        .unwrap();
        let hub2 = enabled.hub2.unwrap();
        assert_eq!(hub2.environment.as_str(), "sandbox");
        assert_eq!(enabled.routes.provider_for("CI"), "hub2");

        let errors = Config::from_args(&ServeArgs {
            hub2_base_url: Some("https://user:hunter2@api.hub2.test".into()),
            hub2_environment: "prod".into(),
            ..defaults()
        })
        .err()
        .unwrap();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].starts_with("HUB2_ENVIRONMENT:"));
        assert!(errors[1].starts_with("HUB2_BASE_URL:") && !errors[1].contains("hunter2"));

        let errors = Config::from_args(&ServeArgs {
            hub2_base_url: Some("https://api.hub2.test".into()),
            ..defaults()
        })
        .err()
        .unwrap();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors[0].starts_with("HUB2_API_KEY:") && errors[1].starts_with("HUB2_MERCHANT_ID:")
        );

        let errors = Config::from_args(&ServeArgs {
            hub2_api_key: Some("key".into()),
            ..defaults()
        })
        .err()
        .unwrap();
        assert_eq!(
            errors,
            ["HUB2_BASE_URL: required when HUB2 credentials are set"]
        );

        // Routing to HUB2 needs HUB2 enabled: a real Novasend and no HUB2 leaves it off.
        let errors = Config::from_args(&ServeArgs {
            routes: "CI:hub2,*:novasend".into(),
            novasend_base_url: Some("https://novasend.test".into()),
            novasend_api_key: Some("k".into()),
            novasend_api_client: Some("c".into()),
            ..defaults()
        })
        .err()
        .unwrap();
        assert!(errors[0].starts_with("PAYMENTS_ROUTES:"), "{errors:?}");
    }

    #[test]
    fn without_any_provider_url_the_sandbox_simulates_hub2_and_routes_may_lead_to_it() {
        let simulated = Config::from_args(&ServeArgs {
            routes: "CI:hub2,*:novasend".into(),
            ..defaults()
        })
        .unwrap();
        assert!(simulated.sandbox_simulates_hub2());
        assert!(
            simulated.hub2.is_none(),
            "its URL is the sandbox's, known once bound"
        );

        let real_hub2 = Config::from_args(&ServeArgs {
            hub2_base_url: Some("https://api.hub2.test".into()),
            hub2_api_key: Some("key".into()),
            hub2_merchant_id: Some("merchant".into()),
            ..defaults()
        })
        .unwrap();
        assert!(!real_hub2.sandbox_simulates_hub2());
    }
}
