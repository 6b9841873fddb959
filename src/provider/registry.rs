//! The providers this replica talks to, built once at startup.

use super::PaymentProvider;
use std::sync::Arc;

#[derive(Clone)]
pub struct Providers {
    /// In registration order; the first answers payins that name no provider.
    all: Arc<[Arc<dyn PaymentProvider>]>,
}

impl Providers {
    /// `all` must hold at least one provider, each under its own name.
    pub fn new(all: Vec<Arc<dyn PaymentProvider>>) -> Result<Self, String> {
        let Some(first) = all.first() else {
            return Err("no payment provider is configured".into());
        };
        for (i, provider) in all.iter().enumerate() {
            if all[..i].iter().any(|p| p.name() == provider.name()) {
                return Err(format!(
                    "provider `{}` is registered twice",
                    provider.name()
                ));
            }
        }
        tracing::debug!(default = first.name(), count = all.len(), "providers");
        Ok(Self { all: all.into() })
    }

    /// The provider named `name` (a payin's, a webhook path's), if it is enabled here.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn PaymentProvider>> {
        self.all.iter().find(|p| p.name() == name)
    }

    /// The provider for a payin whose provider is not known otherwise.
    pub fn default_provider(&self) -> &Arc<dyn PaymentProvider> {
        &self.all[0]
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn PaymentProvider>> {
        self.all.iter()
    }
}
