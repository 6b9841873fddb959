//! NOVASEND_*: the real Novasend (base URL and credentials) and the webhook secrets.

use super::ServeArgs;
use super::parse::{provider_base_url, read_secret, webhook_secrets};
use crate::provider::WebhookSecrets;
use crate::provider::novasend::NovasendConfig;
use std::time::Duration;

/// Novasend's API (`None`: the built-in sandbox), and the webhook secrets (empty: webhook
/// signatures are not checked).
pub(super) fn read_novasend(
    args: &ServeArgs,
    upstream_timeout: Duration,
) -> Result<(Option<NovasendConfig>, WebhookSecrets), Vec<String>> {
    let mut errors = Vec::new();
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
    let raw_secrets = secret(
        "NOVASEND_WEBHOOK_SECRET",
        &args.novasend_webhook_secret,
        &args.novasend_webhook_secret_file,
    );
    let webhook_secrets =
        webhook_secrets("NOVASEND_WEBHOOK_SECRET", raw_secrets).unwrap_or_else(|e| {
            errors.push(e);
            WebhookSecrets::default()
        });

    let mut novasend = None;
    if let Some(raw) = args.novasend_base_url.as_deref().filter(|u| !u.is_empty()) {
        match provider_base_url(raw, "NOVASEND_API_KEY and NOVASEND_API_CLIENT") {
            Err(e) => errors.push(format!("NOVASEND_BASE_URL: {e}")),
            Ok(url) => match (api_key, api_client) {
                (Some(api_key), Some(api_client)) => {
                    novasend = Some(NovasendConfig {
                        base_url: url,
                        api_key,
                        api_client,
                        timeout: upstream_timeout,
                    })
                }
                (key, client) => {
                    for (missing, variable) in [
                        (key.is_none(), "NOVASEND_API_KEY"),
                        (client.is_none(), "NOVASEND_API_CLIENT"),
                    ] {
                        if missing {
                            errors.push(format!(
                                "{variable}: required when NOVASEND_BASE_URL is set"
                            ));
                        }
                    }
                }
            },
        }
    }

    if !errors.is_empty() {
        return Err(errors);
    }
    Ok((novasend, webhook_secrets))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::config::tests::defaults;
    use secrecy::ExposeSecret;

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
