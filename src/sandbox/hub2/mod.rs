//! HUB2 in the sandbox (contract §9): payment intents under `/hub2`, on the same server as
//! the Novasend API, behind the same faults, journal and stats. An intent takes one payment
//! attempt; its operator decides the next action (orange: OTP, mtn: USSD, moov and wave:
//! redirection); the payer answers with the sandbox's fixed code or on its payer page, or a
//! magic phone ending plays the answer; every change is sent as a signed webhook.

mod api;
mod json;
mod payer;
pub mod state;

pub use state::OTP_CODE;

use super::Shared;
use crate::provider::WebhookSecrets;
use axum::Router;
use axum::routing::{get, post};
use chrono::Utc;
use secrecy::SecretString;
use serde_json::Value;
use state::{Intent, Step};
use std::sync::Arc;

/// Where HUB2's API lives on the sandbox: its base URL is `http://<sandbox>/hub2`.
pub const PREFIX: &str = "/hub2";

/// Who the sandbox's HUB2 accepts, and where and how it sends its webhooks.
#[derive(Clone)]
pub struct Hub2SandboxConfig {
    /// The `ApiKey` header it accepts.
    pub api_key: SecretString,
    /// The `MerchantId` header it accepts (and the intents' `merchantId`).
    pub merchant_id: SecretString,
    /// Where to POST webhooks (the service's `/webhooks/hub2`); none if unset.
    pub webhook_url: Option<String>,
    /// Newest first: `s1` is signed with the first, `s0` with the second. Empty: unsigned.
    pub webhook_secrets: WebhookSecrets,
}

impl Default for Hub2SandboxConfig {
    fn default() -> Self {
        Self {
            api_key: SecretString::from("sandbox-hub2-api-key"),
            merchant_id: SecretString::from("sandbox-merchant"),
            webhook_url: None,
            webhook_secrets: WebhookSecrets::default(),
        }
    }
}

/// HUB2's API, to be put behind the fault and stats layers.
pub(super) fn api_routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/hub2/payment-intents", post(api::create_intent))
        .route("/hub2/payment-intents/{id}", get(api::get_intent))
        .route("/hub2/payment-intents/{id}/payments", post(api::pay))
        .route(
            "/hub2/payment-intents/{id}/authentication",
            post(api::authenticate),
        )
}

/// The payer's page, outside the faults like Novasend's.
pub(super) fn page_routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/hub2/pay/{token}", get(payer::page))
        .route("/hub2/pay/{token}/accept", post(payer::accept))
        .route("/hub2/pay/{token}/decline", post(payer::decline))
}

/// The intent as HUB2 returns it, its payer page on this sandbox.
fn render(shared: &Shared, intent: &Intent) -> Value {
    intent.to_json(&format!("{}{PREFIX}/pay/{}", shared.base_url, intent.token))
}

/// Applies a step and sends its webhook. `false`: the step no longer applied.
fn apply(shared: &Arc<Shared>, id: &str, step: Step) -> bool {
    let mut intents = shared.intents();
    let Some(intent) = intents.get_mut(id) else {
        return false;
    };
    let Some(event) = intent.advance(step, Utc::now()) else {
        return false;
    };
    let data = render(shared, intent);
    drop(intents);
    super::webhooks::hub2(shared.clone(), event, data);
    true
}

/// Plays an intent's next steps in the background (see `super::play`).
fn schedule(shared: &Arc<Shared>, id: &str, plan: Vec<(std::time::Duration, Step)>) {
    super::play(shared.clone(), id.to_owned(), plan, apply);
}
