//! A provider sandbox with real state: a Novasend-compatible API (sessions, status, refunds)
//! and HUB2's payment intents under `/hub2` (attempts, OTP, USSD and redirection), payer
//! pages, magic phone numbers, signed webhooks and fault injection shared by both. It is a
//! fake server, not a provider: `payments-gateway sandbox` runs it alone; `serve` without
//! NOVASEND_BASE_URL runs it in process (`in_process`), for HUB2 too without HUB2_BASE_URL.

mod api;
mod control;
mod faults;
pub mod hub2;
pub mod in_process;
mod journal;
mod page;
mod state;
mod webhooks;

pub use faults::{Fault, FaultKind};
pub use hub2::Hub2SandboxConfig;
pub use journal::{JournalEntry, JournalPage};
pub use state::ResponseShape;
pub use webhooks::hub2_signature;

use crate::domain::{Countries, Language};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use secrecy::SecretString;
use serde_json::Value;
use state::{Ledger, SandboxPayin, Step, error_json};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::net::TcpListener;

#[derive(Clone)]
pub struct SandboxConfig {
    pub api_key: SecretString,
    pub api_client: SecretString,
    /// Fee in percent of the amount, rounded up to a whole unit.
    pub fee_percent: u32,
    pub shape: ResponseShape,
    /// The pause between two steps of a payin's life (accepted → processed → completed).
    pub step_delay: Duration,
    /// How long a payin waits for its payer before it expires.
    pub expiry: Duration,
    /// Where to POST webhooks; none if unset.
    pub webhook_url: Option<String>,
    /// Signs webhooks (`x-novasend-signature`) when set.
    pub webhook_secret: Option<SecretString>,
    pub countries: Countries,
    /// Faults active from the start.
    pub faults: Vec<Fault>,
    /// HUB2's side: its credentials and webhooks (steps, expiry and faults are shared).
    pub hub2: Hub2SandboxConfig,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            api_key: SecretString::from("sandbox-api-key"),
            api_client: SecretString::from("sandbox-api-client"),
            fee_percent: 2,
            shape: ResponseShape::default(),
            step_delay: Duration::from_secs(2),
            expiry: Duration::from_secs(600),
            webhook_url: None,
            webhook_secret: None,
            countries: Countries::default(),
            faults: Vec::new(),
            hub2: Hub2SandboxConfig::default(),
        }
    }
}

struct Shared {
    config: SandboxConfig,
    base_url: String,
    ledger: Mutex<Ledger>,
    intents: Mutex<hub2::state::Intents>,
    faults: Mutex<faults::Faults>,
    journal: Mutex<journal::Journal>,
    /// Requests served by route (`GET /v1/payin/{reference}` …), for `GET /_sandbox/stats`.
    stats: Mutex<BTreeMap<String, u64>>,
    webhooks: reqwest::Client,
}

impl Shared {
    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn intents(&self) -> MutexGuard<'_, hub2::state::Intents> {
        self.intents.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn faults(&self) -> MutexGuard<'_, faults::Faults> {
        self.faults.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn journal(&self) -> MutexGuard<'_, journal::Journal> {
        self.journal.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn stats(&self) -> MutexGuard<'_, BTreeMap<String, u64>> {
        self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn payment_url(&self, payin: &SandboxPayin) -> String {
        format!("{}/pay/{}", self.base_url, payin.token)
    }

    fn render(&self, payin: &SandboxPayin) -> Value {
        payin.to_json(self.config.shape, &self.payment_url(payin))
    }
}

/// A running sandbox; dropping it stops it.
pub struct SandboxHandle {
    pub address: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl SandboxHandle {
    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }
}

impl Drop for SandboxHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves the sandbox on `listener` until the handle is dropped.
pub fn start(listener: TcpListener, config: SandboxConfig) -> Result<SandboxHandle, String> {
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    let webhooks = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| format!("cannot build the sandbox's webhook client: {e}"))?;
    let mut faults = faults::Faults::default();
    for fault in &config.faults {
        faults.add(fault.clone());
    }
    let shared = Arc::new(Shared {
        base_url: format!("http://{address}"),
        config,
        ledger: Mutex::default(),
        intents: Mutex::default(),
        faults: Mutex::new(faults),
        journal: Mutex::default(),
        stats: Mutex::default(),
        webhooks,
    });
    let api = Router::new()
        .route("/v1/payin/sessions", post(api::create_session))
        .route("/v1/payin/{reference}", get(api::get_payin))
        .route("/v1/payin/{reference}/refund", post(api::refund))
        .merge(hub2::api_routes())
        .layer(middleware::from_fn_with_state(
            shared.clone(),
            control::inject_faults,
        ))
        .route_layer(middleware::from_fn_with_state(
            shared.clone(),
            control::count_requests,
        ));
    let router = Router::new()
        .merge(api)
        .route("/pay/{token}", get(payment_page))
        .route("/pay/{token}/accept", post(accept))
        .route("/pay/{token}/decline", post(decline))
        .merge(hub2::page_routes())
        .route(
            "/_sandbox/faults",
            get(control::list_faults)
                .post(control::add_fault)
                .delete(control::clear_faults),
        )
        .route("/_sandbox/journal", get(control::journal))
        .route("/_sandbox/stats", get(control::stats))
        .with_state(shared);
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!("sandbox server failed: {e}");
        }
    });
    tracing::info!(%address, "sandbox listening (Novasend, and HUB2 under /hub2)");
    Ok(SandboxHandle { address, task })
}

type Reply = (StatusCode, Json<Value>);

fn reply(status: StatusCode, body: Value) -> Reply {
    (status, Json(body))
}

fn refuse(status: StatusCode, error: &str, message: &str) -> Reply {
    reply(status, error_json(status.as_u16(), error, message, vec![]))
}

fn language(headers: &HeaderMap) -> Language {
    headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .map(Language::from_accept_language)
        .unwrap_or_default()
}

async fn payment_page(State(shared): State<Arc<Shared>>, Path(token): Path<String>) -> Response {
    match shared.ledger().find(&token) {
        Some(payin) if payin.token == token => Html(page::render(payin)).into_response(),
        _ => (
            StatusCode::NOT_FOUND,
            Html("<!doctype html><p>Unknown payment link.</p>".to_owned()),
        )
            .into_response(),
    }
}

async fn accept(State(shared): State<Arc<Shared>>, Path(token): Path<String>) -> Response {
    let d = shared.config.step_delay;
    answer(
        &shared,
        &token,
        Step::Accept,
        vec![(d, Step::Process), (d, Step::Complete)],
    )
}

async fn decline(State(shared): State<Arc<Shared>>, Path(token): Path<String>) -> Response {
    answer(&shared, &token, Step::Decline, vec![])
}

/// The payer's click: the step now, what follows later, and back to the page.
fn answer(shared: &Arc<Shared>, token: &str, step: Step, then: Vec<(Duration, Step)>) -> Response {
    let Some(id) = shared
        .ledger()
        .find(token)
        .filter(|p| p.token == token)
        .map(|p| p.id.clone())
    else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if apply(shared, &id, step) {
        schedule(shared.clone(), id, then);
    }
    Redirect::to(&format!("/pay/{token}")).into_response()
}

/// Applies a step and sends its webhook. `false`: the step no longer applied.
fn apply(shared: &Arc<Shared>, id: &str, step: Step) -> bool {
    let mut ledger = shared.ledger();
    let Some(payin) = ledger.payins.get_mut(id) else {
        return false;
    };
    let Some(event) = payin.advance(step, Utc::now()) else {
        return false;
    };
    let data = shared.render(payin);
    drop(ledger);
    webhooks::novasend(shared.clone(), event, data);
    true
}

/// Plays a Novasend payin's next steps (see `play`).
fn schedule(shared: Arc<Shared>, id: String, plan: Vec<(Duration, Step)>) {
    play(shared, id, plan, apply);
}

/// Plays a payin's or an intent's next steps in the background, each after its delay;
/// stops at the first step that no longer applies (the payer answered meanwhile). Bounded:
/// a plan is a few steps, each a configured delay.
fn play<S: Copy + Send + 'static>(
    shared: Arc<Shared>,
    id: String,
    plan: Vec<(Duration, S)>,
    apply: fn(&Arc<Shared>, &str, S) -> bool,
) {
    if plan.is_empty() {
        return;
    }
    tokio::spawn(async move {
        for (delay, step) in plan {
            tokio::time::sleep(delay).await;
            if !apply(&shared, &id, step) {
                return;
            }
        }
    });
}
