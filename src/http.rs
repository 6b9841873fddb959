//! The HTTP side on PAYMENTS_HTTP_ADDR: providers' webhooks, health and metrics.

use crate::events::webhook::{self, WebhookState};
use crate::provider::Providers;
use crate::store::Store;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use std::sync::Arc;

/// Webhook bodies larger than this are refused (413).
const MAX_WEBHOOK_BYTES: usize = 256 * 1024;

#[derive(Clone)]
struct Readiness {
    store: Arc<dyn Store>,
    providers: Providers,
}

pub fn router(webhooks: WebhookState, store: Arc<dyn Store>, providers: Providers) -> Router {
    let metrics = crate::telemetry::metrics::handle();
    Router::new()
        .route(
            "/webhooks/{provider}",
            post(webhook::receive)
                .with_state(webhooks)
                .layer(DefaultBodyLimit::max(MAX_WEBHOOK_BYTES)),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(ready).with_state(Readiness { store, providers }),
        )
        .route("/metrics", get(move || async move { metrics.render() }))
}

/// Ready when the store answers. Each provider's reachability is reported (under its name)
/// but does not count: an upstream outage must not empty the Service.
async fn ready(State(readiness): State<Readiness>) -> (StatusCode, Json<Value>) {
    let (code, mut body) = match readiness.store.check_writable().await {
        Ok(()) => (StatusCode::OK, json!({"status": "ready", "store": "ok"})),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "not ready", "store": "unavailable"}),
        ),
    };
    for provider in readiness.providers.iter() {
        let reachable = match provider.reachable() {
            Some(true) => "reachable",
            Some(false) => "unreachable",
            None => "unknown",
        };
        body[provider.name()] = json!(reachable);
    }
    (code, Json(body))
}
