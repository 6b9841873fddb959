//! The one place that lists the payment providers: one line each, in registration order
//! (the first answers payins that name none unless routes say otherwise). Configuration and
//! startup iterate over this list; they name no provider.

use super::setup::{Enabled, ProviderConfig, ProviderSetup};
use super::{hub2, novasend};
use std::time::Duration;

/// Builds, from `field: the provider's #[derive(clap::Args)] type` lines:
/// `ProviderArgs`, every provider's flags flattened; `ProviderConfigs`, every provider's
/// checked settings, one field each; and the loops over them.
macro_rules! catalog {
    ($($field:ident: $args:ty,)+) => {
        /// Every provider's flags, flattened into `serve`'s.
        #[derive(Debug, Clone, Default, clap::Args)]
        pub struct ProviderArgs {
            $(
                #[command(flatten)]
                pub $field: $args,
            )+
        }

        /// Every provider's checked settings.
        #[derive(Clone, Default)]
        pub struct ProviderConfigs {
            $(pub $field: ProviderConfig<<$args as ProviderSetup>::Api>,)+
        }

        /// The providers' names, in registration order.
        pub const NAMES: &[&str] = &[
            $(<$args>::NAME,)+
        ];

        impl ProviderArgs {
            /// The providers whose base URL is unset, from the raw values (a bad URL counts
            /// as set: it is reported as bad, not as missing).
            pub fn without_base_url(&self) -> Vec<&'static str> {
                let mut names = Vec::new();
                $(
                    if !self.$field.base_url_set() {
                        names.push(<$args>::NAME);
                    }
                )+
                names
            }

            /// Reads every provider's variables; the error lists all of their errors, one
            /// line each, provider after provider.
            pub fn read(&self, upstream_timeout: Duration) -> Result<ProviderConfigs, Vec<String>> {
                let mut errors = Vec::new();
                $(
                    let $field = self
                        .$field
                        .read(upstream_timeout)
                        .map_err(|e| errors.extend(e))
                        .ok();
                )+
                if !errors.is_empty() {
                    return Err(errors);
                }
                Ok(ProviderConfigs {
                    $($field: $field.expect("checked"),)+
                })
            }
        }

        impl ProviderConfigs {
            /// The providers without an API to call: no base URL (and no sandbox in its
            /// place yet).
            pub fn without_api(&self) -> Vec<&'static str> {
                let mut names = Vec::new();
                $(
                    if self.$field.api.is_none() {
                        names.push(<$args>::NAME);
                    }
                )+
                names
            }

            /// The clients of the providers that have an API, in registration order, and
            /// every provider's webhook secrets.
            pub fn enable(self) -> Result<Enabled, String> {
                let mut enabled = Enabled::default();
                $(self.$field.enable(&mut enabled)?;)+
                Ok(enabled)
            }
        }
    };
}

catalog! {
    novasend: novasend::setup::NovasendArgs,
    hub2: hub2::setup::Hub2Args,
}
