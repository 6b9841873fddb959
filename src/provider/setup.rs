//! What every provider's setup has in common: its settings once checked, how the catalog
//! reads and enables it, and the checks its variables share. Each provider's own variables
//! live in its module (`novasend/setup.rs`, `hub2/setup.rs`); the list of providers in
//! `catalog.rs`.

use super::{PaymentProvider, WebhookSecrets};
use crate::config::read_secret;
use secrecy::{ExposeSecret, SecretString};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// A provider's variables (`#[derive(clap::Args)]`, flattened into `serve`'s flags by the
/// catalog).
pub trait ProviderSetup {
    type Api: ProviderApi;
    const NAME: &'static str = <Self::Api as ProviderApi>::NAME;

    /// Whether its base URL is given, valid or not: without one the provider is not enabled,
    /// unless the in-process sandbox stands in for it.
    fn base_url_set(&self) -> bool;

    /// Checks every variable; the error lists one line per bad one.
    fn read(&self, upstream_timeout: Duration) -> Result<ProviderConfig<Self::Api>, Vec<String>>;
}

/// Where a provider is and who we are to it, and how to build its client.
pub trait ProviderApi: Clone {
    /// The provider's stable name (`novasend`).
    const NAME: &'static str;
    /// The variable that enables its webhook signature checks, named when it is unset.
    const WEBHOOK_SECRET: &'static str;

    fn base_url(&self) -> &url::Url;

    fn connect(self) -> Result<Arc<dyn PaymentProvider>, String>;
}

/// One provider's checked settings.
#[derive(Clone)]
pub struct ProviderConfig<A> {
    /// `None`: no base URL; not enabled unless the in-process sandbox fills this in.
    pub api: Option<A>,
    /// Empty: its webhook signatures are not checked.
    pub webhook_secrets: WebhookSecrets,
}

impl<A> Default for ProviderConfig<A> {
    fn default() -> Self {
        Self {
            api: None,
            webhook_secrets: WebhookSecrets::default(),
        }
    }
}

/// The enabled providers, in catalog order (the first answers payins that name none unless
/// routes say otherwise), and every provider's webhook secrets by name.
#[derive(Default)]
pub struct Enabled {
    pub providers: Vec<Arc<dyn PaymentProvider>>,
    pub webhook_secrets: HashMap<&'static str, WebhookSecrets>,
}

impl<A: ProviderApi> ProviderConfig<A> {
    /// Adds this provider to `enabled` when it has an API to call.
    pub fn enable(self, enabled: &mut Enabled) -> Result<(), String> {
        let secrets_unset = self.webhook_secrets.is_empty();
        enabled
            .webhook_secrets
            .insert(A::NAME, self.webhook_secrets);
        let Some(api) = self.api else {
            return Ok(());
        };
        tracing::info!(provider = A::NAME, base_url = %api.base_url(), "provider enabled");
        let provider = api.connect()?;
        if secrets_unset {
            tracing::warn!(
                "{} is unset: {} webhook signatures are not checked",
                A::WEBHOOK_SECRET,
                provider.display_name()
            );
        }
        enabled.providers.push(provider);
        Ok(())
    }
}

/// A provider's errors, gathered while its variables are read so that all are reported.
#[derive(Default)]
pub struct Checks(Vec<String>);

impl Checks {
    pub fn push(&mut self, error: String) {
        self.0.push(error);
    }

    /// A secret from `variable`, or from the file `{variable}_FILE` names.
    pub fn secret(
        &mut self,
        variable: &str,
        value: &Option<String>,
        file: &Option<String>,
    ) -> Option<SecretString> {
        read_secret(variable, value, file).unwrap_or_else(|e| {
            self.push(e);
            None
        })
    }

    /// Webhook secrets, comma-separated, newest first (several during a rotation), from
    /// `variable` or its `_FILE`; none: signatures are not checked.
    pub fn webhook_secrets(
        &mut self,
        variable: &str,
        value: &Option<String>,
        file: &Option<String>,
    ) -> WebhookSecrets {
        let Some(raw) = self.secret(variable, value, file) else {
            return WebhookSecrets::default();
        };
        WebhookSecrets::parse(raw.expose_secret()).unwrap_or_else(|e| {
            self.push(format!("{variable}: {e}"));
            WebhookSecrets::default()
        })
    }

    /// The base URL in `variable`, when set and valid: absolute http(s), and without
    /// credentials, which would be logged and sent with every call (they belong in
    /// `credentials`).
    pub fn base_url(
        &mut self,
        variable: &str,
        raw: &Option<String>,
        credentials: &str,
    ) -> Option<url::Url> {
        let raw = raw.as_deref().filter(|u| !u.is_empty())?;
        let checked = match url::Url::parse(raw) {
            Ok(url) if !url.username().is_empty() || url.password().is_some() => Err(format!(
                "must not carry credentials (user:password@); use {credentials}"
            )),
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => {
                Ok(url)
            }
            _ => Err("must be an absolute http(s) URL".to_owned()),
        };
        checked
            .map_err(|e| self.push(format!("{variable}: {e}")))
            .ok()
    }

    /// One error for each credential (`variable`, whether it is missing) that a set base URL
    /// needs.
    pub fn require<const N: usize>(&mut self, base_url: &str, credentials: [(&str, bool); N]) {
        for (variable, missing) in credentials {
            if missing {
                self.push(format!("{variable}: required when {base_url} is set"));
            }
        }
    }

    /// `value`, unless an error was found.
    pub fn finish<T>(self, value: T) -> Result<T, Vec<String>> {
        match self.0.is_empty() {
            true => Ok(value),
            false => Err(self.0),
        }
    }
}

/// Whether a URL variable is set (empty counts as unset).
pub fn is_set(url: &Option<String>) -> bool {
    url.as_deref().is_some_and(|u| !u.is_empty())
}
