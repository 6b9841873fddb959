//! HUB2 payment intents (contract §9): everything HUB2-specific lives here (its JSON, URLs,
//! headers, status table, next actions and webhooks).

mod client;
pub mod setup;
mod status;
pub mod webhook;
pub mod wire;

pub use client::Hub2Client;

use secrecy::SecretString;
use std::time::Duration;

/// HUB2's name among providers (payins, webhook path, routes).
pub const NAME: &str = "hub2";

/// Where HUB2 is and who we are to it.
#[derive(Clone)]
pub struct Hub2Config {
    pub base_url: url::Url,
    pub api_key: SecretString,
    pub merchant_id: SecretString,
    pub environment: Hub2Environment,
    /// Per call.
    pub timeout: Duration,
}

/// HUB2's `Environment` header: real money, or HUB2's own test mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Hub2Environment {
    #[default]
    Live,
    Sandbox,
}

impl Hub2Environment {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "live" => Some(Self::Live),
            "sandbox" => Some(Self::Sandbox),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Live => "live",
            Self::Sandbox => "sandbox",
        }
    }
}
