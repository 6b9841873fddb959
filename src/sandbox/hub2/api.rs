//! HUB2's payment-intent API as the sandbox serves it: headers `ApiKey`, `MerchantId`,
//! `Environment`; create an intent, make its one payment attempt, send the payer's code,
//! read it. Every write it processes goes into the journal with the status it answered.

use super::state::{
    ActionKind, Attempt, AttemptRefused, AttemptStatus, CodeRefused, Intent, OPERATORS, Step,
};
use super::{render, schedule};
use crate::domain::PhoneNumber;
use crate::sandbox::journal::JournalEntry;
use crate::sandbox::state::new_id;
use crate::sandbox::{Reply, Shared, reply};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use chrono::Utc;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

/// HUB2's error body: the status, its reason and a message (which the gateway reads).
fn fail(status: StatusCode, message: &str) -> Reply {
    reply(
        status,
        json!({
            "statusCode": status.as_u16(),
            "error": status.canonical_reason().unwrap_or("Error"),
            "message": message,
        }),
    )
}

/// Equal, in time independent of where they differ (the length may leak; it is public).
fn same(given: &str, expected: &str) -> bool {
    given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// The sandbox's key and merchant, in sandbox mode: it holds no live money to reach.
fn authorized(shared: &Shared, headers: &HeaderMap) -> Result<(), Reply> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let config = &shared.config.hub2;
    let key = same(header("apikey"), config.api_key.expose_secret());
    let merchant = same(header("merchantid"), config.merchant_id.expose_secret());
    if !(key && merchant) {
        return Err(fail(
            StatusCode::UNAUTHORIZED,
            "invalid ApiKey or MerchantId",
        ));
    }
    match header("environment") {
        "sandbox" => Ok(()),
        "live" => Err(fail(
            StatusCode::UNAUTHORIZED,
            "these credentials are for the sandbox environment only",
        )),
        _ => Err(fail(
            StatusCode::BAD_REQUEST,
            "the Environment header must be live or sandbox",
        )),
    }
}

/// A JSON object body, or 422.
fn object(body: &[u8]) -> Result<Value, Reply> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| {
            fail(
                StatusCode::UNPROCESSABLE_ENTITY,
                "the body must be a JSON object",
            )
        })
}

fn text<'a>(body: &'a Value, pointer: &str) -> &'a str {
    body.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// 422 listing every problem, or nothing.
fn refuse_all(problems: Vec<&str>) -> Result<(), Reply> {
    match problems.is_empty() {
        true => Ok(()),
        false => Err(fail(StatusCode::UNPROCESSABLE_ENTITY, &problems.join("; "))),
    }
}

fn journal(shared: &Shared, operation: &str, reference: String, answer: &Reply) {
    let intent = shared
        .intents()
        .get(&reference)
        .map(|i| (i.purchase_reference.clone(), i.amount));
    shared.journal().record(JournalEntry {
        operation: operation.into(),
        reference,
        payin_reference: intent.as_ref().map(|(r, _)| r.clone()),
        // HUB2 has no idempotency header.
        idempotency_key: String::new(),
        http_status: answer.0.as_u16(),
        amount: intent.as_ref().map(|(_, amount)| *amount),
        payin_amount: intent.map(|(_, amount)| amount),
    });
}

pub(super) async fn create_intent(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let answer = create_inner(&shared, &headers, &body).unwrap_or_else(|refused| refused);
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    shared.journal().record(JournalEntry {
        operation: "hub2_intent".into(),
        reference: text(&request, "/purchaseReference").to_owned(),
        payin_reference: None,
        idempotency_key: String::new(),
        http_status: answer.0.as_u16(),
        amount: request["amount"].as_i64(),
        payin_amount: None,
    });
    answer
}

fn create_inner(shared: &Arc<Shared>, headers: &HeaderMap, body: &[u8]) -> Result<Reply, Reply> {
    authorized(shared, headers)?;
    let body = object(body)?;
    let purchase_reference = text(&body, "/purchaseReference");
    let customer_reference = text(&body, "/customerReference");
    let currency = text(&body, "/currency");
    let amount = body["amount"].as_i64().filter(|a| *a >= 1);
    let countries = &shared.config.countries;
    let known_currency = countries
        .codes()
        .any(|c| countries.currency_of(c) == Some(currency));
    let mut problems = Vec::new();
    if purchase_reference.is_empty() || purchase_reference.len() > 64 {
        problems.push("purchaseReference is required (1 to 64 characters)");
    }
    if customer_reference.is_empty() {
        problems.push("customerReference is required");
    }
    if amount.is_none() {
        problems.push("amount must be a positive whole number");
    }
    if !known_currency {
        problems.push("currency is not supported");
    }
    refuse_all(problems)?;
    // A purchase reference may open several intents: an intent charges no one, and a
    // create whose answer was lost opens another (contract §9).
    let mut intents = shared.intents();
    let intent = Intent::new(
        shared.config.hub2.merchant_id.expose_secret(),
        purchase_reference.to_owned(),
        customer_reference.to_owned(),
        amount.expect("checked"),
        currency.to_owned(),
        Utc::now(),
    );
    let rendered = render(shared, &intent);
    let id = intent.id.clone();
    intents.insert(intent);
    drop(intents);
    // An intent nobody pays, or whose payer never answers, is canceled in the end (the
    // step does not apply to a silent number, nor once the payer answered).
    schedule(shared, &id, vec![(shared.config.expiry, Step::Expire)]);
    Ok(reply(StatusCode::CREATED, rendered))
}

pub(super) async fn get_intent(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Reply {
    let intents = shared.intents();
    let intent = intents.get(&id);
    // HUB2 lets a client-side application read an intent with its token instead of the key.
    let by_token = query
        .get("token")
        .zip(intent)
        .is_some_and(|(token, intent)| same(token, &intent.token));
    if !by_token && let Err(refused) = authorized(&shared, &headers) {
        return refused;
    }
    match intent {
        Some(intent) => reply(StatusCode::OK, render(&shared, intent)),
        None => fail(StatusCode::NOT_FOUND, "payment intent not found"),
    }
}

/// The attempt's body, checked against its intent: the token, the method, the operator,
/// a country whose currency is the intent's, and the payer's number.
fn attempt_of(shared: &Shared, intent: &Intent, body: &Value) -> Result<Attempt, Reply> {
    let operator = text(body, "/provider");
    let country = text(body, "/country");
    let msisdn = text(body, "/mobileMoney/msisdn");
    let mut problems = Vec::new();
    if !same(text(body, "/token"), &intent.token) {
        problems.push("token does not match the payment intent");
    }
    if text(body, "/paymentMethod") != "mobile_money" {
        problems.push("paymentMethod must be mobile_money");
    }
    if !OPERATORS.contains(&operator) {
        problems.push("provider must be one of orange, mtn, moov, wave");
    }
    if shared.config.countries.currency_of(country) != Some(intent.currency.as_str()) {
        problems.push("country is not supported for the payment intent's currency");
    }
    if PhoneNumber::parse_e164(msisdn).is_none() {
        problems.push("mobileMoney.msisdn must be in E.164 format");
    }
    refuse_all(problems)?;
    Ok(Attempt {
        id: new_id("pa"),
        operator: operator.to_owned(),
        country: country.to_owned(),
        msisdn: msisdn.to_owned(),
        status: AttemptStatus::Pending,
        success_url: text(body, "/mobileMoney/onSuccessRedirectionUrl").to_owned(),
        failure_url: text(body, "/mobileMoney/onFailedRedirectionUrl").to_owned(),
        created_at: Utc::now(),
    })
}

/// The money step: recorded in the journal as `hub2_payment`.
pub(super) async fn pay(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Reply {
    let answer = pay_inner(&shared, &headers, &id, &body).unwrap_or_else(|refused| refused);
    journal(&shared, "hub2_payment", id, &answer);
    answer
}

fn pay_inner(
    shared: &Arc<Shared>,
    headers: &HeaderMap,
    id: &str,
    body: &[u8],
) -> Result<Reply, Reply> {
    authorized(shared, headers)?;
    let body = object(body)?;
    let mut intents = shared.intents();
    let intent = intents
        .get_mut(id)
        .ok_or_else(|| fail(StatusCode::NOT_FOUND, "payment intent not found"))?;
    let attempt = attempt_of(shared, intent, &body)?;
    let action = ActionKind::for_operator(&attempt.operator).expect("checked");
    let event = intent
        .attempt(attempt, action, Utc::now())
        .map_err(|refused| match refused {
            AttemptRefused::AlreadyAttempted => fail(
                StatusCode::CONFLICT,
                "a payment attempt already exists on this payment intent",
            ),
            AttemptRefused::NotPayable(status) => fail(
                StatusCode::CONFLICT,
                &format!("the payment intent is {}", status.as_str()),
            ),
        })?;
    let plan = intent.plan_after_attempt(shared.config.step_delay);
    let rendered = render(shared, intent);
    drop(intents);
    super::super::webhooks::hub2(shared.clone(), event, rendered.clone());
    schedule(shared, id, plan);
    Ok(reply(StatusCode::OK, rendered))
}

pub(super) async fn authenticate(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Reply {
    let answer =
        authenticate_inner(&shared, &headers, &id, &body).unwrap_or_else(|refused| refused);
    journal(&shared, "hub2_authentication", id, &answer);
    answer
}

fn authenticate_inner(
    shared: &Arc<Shared>,
    headers: &HeaderMap,
    id: &str,
    body: &[u8],
) -> Result<Reply, Reply> {
    authorized(shared, headers)?;
    let body = object(body)?;
    let mut intents = shared.intents();
    let intent = intents
        .get_mut(id)
        .ok_or_else(|| fail(StatusCode::NOT_FOUND, "payment intent not found"))?;
    let mut problems = Vec::new();
    if !same(text(&body, "/token"), &intent.token) {
        problems.push("token does not match the payment intent");
    }
    if text(&body, "/confirmationCode").is_empty() {
        problems.push("confirmationCode is required");
    }
    refuse_all(problems)?;
    let event = intent
        .authenticate(text(&body, "/confirmationCode"), Utc::now())
        .map_err(|refused| match refused {
            CodeRefused::Wrong => fail(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid confirmation code",
            ),
            CodeRefused::NotExpected => fail(
                StatusCode::CONFLICT,
                "the payment intent does not wait for a confirmation code",
            ),
        })?;
    let plan = intent.plan_after_accept(shared.config.step_delay);
    let rendered = render(shared, intent);
    drop(intents);
    super::super::webhooks::hub2(shared.clone(), event, rendered.clone());
    schedule(shared, id, plan);
    Ok(reply(StatusCode::OK, rendered))
}
