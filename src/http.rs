//! The HTTP side on PAYMENTS_HTTP_ADDR: Novasend webhooks and health.

use crate::events::webhook::{self, WebhookState};
use crate::store::Store;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use std::sync::Arc;

pub fn router(webhooks: WebhookState, store: Arc<dyn Store>) -> Router {
    Router::new()
        .route(
            "/webhooks/novasend",
            post(webhook::receive).with_state(webhooks),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready).with_state(store))
}

/// Ready when the store answers. Novasend's reachability does not count: an upstream outage
/// must not empty the Service.
async fn ready(State(store): State<Arc<dyn Store>>) -> (StatusCode, &'static str) {
    match store.ping().await {
        Ok(()) => (StatusCode::OK, "{\"status\":\"ready\",\"store\":\"ok\"}"),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "{\"status\":\"not ready\",\"store\":\"unavailable\"}",
        ),
    }
}
