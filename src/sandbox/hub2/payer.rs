//! The payer's side of a USSD or redirection intent: the page behind `nextAction.data.url`,
//! where the sandbox plays the operator's page or the payer's phone. An OTP intent is
//! answered with its code through the API instead.

use super::state::{ActionKind, Intent, IntentStatus, Step};
use super::{PREFIX, apply, schedule};
use crate::sandbox::Shared;
use crate::sandbox::page::{Page, render_page};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use std::sync::Arc;

fn state(intent: &Intent) -> &'static str {
    match (intent.status, intent.failure, intent.action) {
        (IntentStatus::Successful, _, _) => "Payment completed. Thank you!",
        (_, Some(("payment_declined", _)), _) => "You declined this payment.",
        (_, Some(_), _) => "The payment failed.",
        (IntentStatus::Canceled, _, _) => "This payment request has expired.",
        (IntentStatus::Processing, _, _) => "Accepted — the payment is being processed.",
        (IntentStatus::PaymentRequired, _, _) => "No payment has been started on this intent.",
        (IntentStatus::ActionRequired, _, Some(ActionKind::Otp)) => {
            "Enter the code you received by SMS where you started the payment."
        }
        // Waiting for this page's answer: the buttons.
        (IntentStatus::ActionRequired, _, _) => "",
    }
}

fn render(intent: &Intent) -> String {
    let attempt = intent.attempt.as_ref();
    let back = attempt.map_or(String::new(), |a| match intent.status {
        IntentStatus::Successful => a.success_url.clone(),
        _ if intent.is_final() => a.failure_url.clone(),
        _ => String::new(),
    });
    render_page(&Page {
        title: "HUB2",
        path: format!("{PREFIX}/pay/{}", intent.token),
        rows: vec![
            ("Payer", "payer", intent.masked_payer()),
            (
                "Operator",
                "operator",
                attempt.map_or(String::new(), |a| a.operator.clone()),
            ),
            ("Merchant reference", "", intent.purchase_reference.clone()),
            (
                "Amount",
                "amount",
                format!("{} {}", intent.amount, intent.currency),
            ),
        ],
        state: state(intent).to_owned(),
        back,
    })
}

fn unknown_link() -> Response {
    (
        StatusCode::NOT_FOUND,
        Html("<!doctype html><p>Unknown payment link.</p>".to_owned()),
    )
        .into_response()
}

pub(super) async fn page(State(shared): State<Arc<Shared>>, Path(token): Path<String>) -> Response {
    match shared.intents().by_token(&token) {
        Some(intent) => Html(render(intent)).into_response(),
        None => unknown_link(),
    }
}

pub(super) async fn accept(
    State(shared): State<Arc<Shared>>,
    Path(token): Path<String>,
) -> Response {
    answer(&shared, &token, Step::Accept)
}

pub(super) async fn decline(
    State(shared): State<Arc<Shared>>,
    Path(token): Path<String>,
) -> Response {
    answer(&shared, &token, Step::Decline)
}

/// The payer's click: the step now, the money after a step delay when accepted, and back to
/// the page. An OTP intent takes no click: its code is its answer.
fn answer(shared: &Arc<Shared>, token: &str, step: Step) -> Response {
    let found = shared.intents().by_token(token).map(|intent| {
        let then = match step {
            Step::Accept => intent.plan_after_accept(shared.config.step_delay),
            _ => vec![],
        };
        (intent.id.clone(), intent.action, then)
    });
    let Some((id, action, then)) = found else {
        return unknown_link();
    };
    if action != Some(ActionKind::Otp) && apply(shared, &id, step) {
        schedule(shared, &id, then);
    }
    Redirect::to(&format!("{PREFIX}/pay/{token}")).into_response()
}
