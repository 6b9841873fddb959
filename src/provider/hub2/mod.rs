//! HUB2 payment intents (contract §9): everything HUB2-specific lives here. This part reads
//! HUB2's answers; the client that calls HUB2 comes with its configuration.

mod status;
pub mod wire;

/// HUB2's name among providers (payins, webhook path, routes).
pub const NAME: &str = "hub2";
