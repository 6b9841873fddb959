//! The providers this replica talks to, built once at startup, and which one takes a payin.

use super::PaymentProvider;
use crate::domain::{CreatePayinCommand, Routes, Violation, Violations};
use std::sync::Arc;

#[derive(Clone)]
pub struct Providers {
    /// In registration order; the first answers payins that name no provider.
    all: Arc<[Arc<dyn PaymentProvider>]>,
    routes: Arc<Routes>,
}

impl Providers {
    /// `all` must hold at least one provider, each under its own name, and every route
    /// must name one of them.
    pub fn new(all: Vec<Arc<dyn PaymentProvider>>, routes: Routes) -> Result<Self, String> {
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
        if let Some(missing) = routes
            .providers()
            .find(|name| !all.iter().any(|p| p.name() == *name))
        {
            return Err(format!(
                "PAYMENTS_ROUTES: routes payins to `{missing}`, which is not enabled (enabled: {})",
                names(&all)
            ));
        }
        tracing::debug!(default = first.name(), count = all.len(), "providers");
        Ok(Self {
            all: all.into(),
            routes: Arc::new(routes),
        })
    }

    /// The provider that takes `command`: the one it names, else its country's route; or
    /// field violations (that provider is not enabled, or finds the command incomplete),
    /// before anything is kept or sent.
    pub fn route(
        &self,
        command: &CreatePayinCommand,
    ) -> Result<&Arc<dyn PaymentProvider>, Violations> {
        let name = command
            .provider
            .as_deref()
            .unwrap_or_else(|| self.routes.provider_for(&command.country));
        let Some(provider) = self.get(name) else {
            let mut violations = Violations::default();
            let enabled = names(&self.all);
            violations.add("provider", Violation::ProviderNotEnabled { enabled });
            return Err(violations);
        };
        let violations = provider.check(command);
        if violations.0.is_empty() {
            Ok(provider)
        } else {
            Err(violations)
        }
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

fn names(all: &[Arc<dyn PaymentProvider>]) -> String {
    all.iter().map(|p| p.name()).collect::<Vec<_>>().join(", ")
}
