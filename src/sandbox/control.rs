//! The sandbox's test controls: the fault middleware in front of both APIs (Novasend's, and
//! HUB2's under `/hub2`), the `/_sandbox/faults` rules, the `/_sandbox/journal` of processed
//! writes and the `/_sandbox/stats` of requests served by route (faulted ones included).

use super::faults::{Fault, FaultKind};
use super::journal::JournalPage;
use super::{Reply, Shared, refuse, reply};
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;

pub(super) async fn inject_faults(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let fault = shared
        .faults()
        .pick(request.method().as_str(), request.uri().path());
    let Some(fault) = fault else {
        return next.run(request).await;
    };
    tracing::info!(kind = ?fault.kind, path = request.uri().path(), "sandbox fault injected");
    match fault.kind {
        FaultKind::Latency => {
            tokio::time::sleep(fault.latency()).await;
            next.run(request).await
        }
        FaultKind::Status => {
            let status = StatusCode::from_u16(fault.status.unwrap_or(500))
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            refuse(
                status,
                status.canonical_reason().unwrap_or("Error"),
                "injected fault",
            )
            .into_response()
        }
        FaultKind::Drop => dropped_connection(),
        FaultKind::DropAfter => {
            let _processed = next.run(request).await;
            dropped_connection()
        }
        FaultKind::Malformed => malformed(StatusCode::OK),
        FaultKind::MalformedAfter => {
            let processed = next.run(request).await;
            // The write happened; the caller just cannot read that it did.
            let status = Some(processed.status())
                .filter(StatusCode::is_success)
                .unwrap_or(StatusCode::OK);
            malformed(status)
        }
    }
}

/// A success status with a body that is not JSON: cut off mid-object.
fn malformed(status: StatusCode) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        "{\"id\": \"pr_",
    )
        .into_response()
}

/// A response whose body fails at once: the connection is cut before any answer arrives.
fn dropped_connection() -> Response {
    let failing = futures_util::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "injected drop",
        ))
    });
    Response::new(Body::from_stream(failing))
}

pub(super) async fn list_faults(State(shared): State<Arc<Shared>>) -> Json<Vec<Fault>> {
    Json(shared.faults().list())
}

pub(super) async fn add_fault(
    State(shared): State<Arc<Shared>>,
    Json(fault): Json<Fault>,
) -> Reply {
    match fault.check() {
        Ok(()) => {
            shared.faults().add(fault);
            reply(StatusCode::CREATED, json!({ "added": true }))
        }
        Err(e) => refuse(StatusCode::BAD_REQUEST, "Bad Request", &e),
    }
}

pub(super) async fn clear_faults(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.faults().clear();
    StatusCode::NO_CONTENT
}

pub(super) async fn journal(State(shared): State<Arc<Shared>>) -> Json<JournalPage> {
    Json(shared.journal().page())
}

/// Counts each API request by method and route template, before any fault applies.
pub(super) async fn count_requests(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let key = format!("{} {}", request.method(), route(request.uri().path()));
    *shared.stats().entry(key).or_default() += 1;
    next.run(request).await
}

/// `{"requests": {"GET /v1/payin/{reference}": 12, "POST /v1/payin/sessions": 3}}`.
pub(super) async fn stats(State(shared): State<Arc<Shared>>) -> Json<serde_json::Value> {
    Json(json!({ "requests": *shared.stats() }))
}

/// The API route template a path matches.
fn route(path: &str) -> &'static str {
    if let Some(rest) = path.strip_prefix("/hub2/payment-intents") {
        return match rest.trim_start_matches('/') {
            "" => "/hub2/payment-intents",
            rest if rest.ends_with("/payments") => "/hub2/payment-intents/{id}/payments",
            rest if rest.ends_with("/authentication") => {
                "/hub2/payment-intents/{id}/authentication"
            }
            _ => "/hub2/payment-intents/{id}",
        };
    }
    match path.strip_prefix("/v1/payin/") {
        Some("sessions") => "/v1/payin/sessions",
        Some(rest) if rest.ends_with("/refund") => "/v1/payin/{reference}/refund",
        Some(_) => "/v1/payin/{reference}",
        None => "other",
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn paths_are_counted_by_route_template() {
        assert_eq!(super::route("/v1/payin/sessions"), "/v1/payin/sessions");
        assert_eq!(super::route("/v1/payin/pr_1"), "/v1/payin/{reference}");
        assert_eq!(
            super::route("/v1/payin/pr_1/refund"),
            "/v1/payin/{reference}/refund"
        );
        assert_eq!(super::route("/elsewhere"), "other");
        for (path, template) in [
            ("/hub2/payment-intents", "/hub2/payment-intents"),
            ("/hub2/payment-intents/pi_1", "/hub2/payment-intents/{id}"),
            (
                "/hub2/payment-intents/pi_1/payments",
                "/hub2/payment-intents/{id}/payments",
            ),
            (
                "/hub2/payment-intents/pi_1/authentication",
                "/hub2/payment-intents/{id}/authentication",
            ),
        ] {
            assert_eq!(super::route(path), template);
        }
    }
}
