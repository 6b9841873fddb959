//! The Novasend API the sandbox serves: create a session, read a payin, refund it. Every
//! write it processes goes into the journal with the status it answered.

use super::journal::JournalEntry;
use super::state::{
    Ledger, SandboxPayin, SandboxRefund, Scenario, Step, error_json, fee_for, new_id,
    validate_session,
};
use super::{Reply, Shared, language, refuse, reply, schedule};
use crate::domain::Language;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use chrono::Utc;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use std::sync::Arc;

/// Basic auth with the sandbox's key and client.
fn authorized(shared: &Shared, headers: &HeaderMap) -> Result<(), Reply> {
    use base64::Engine;
    let expected = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        shared.config.api_key.expose_secret(),
        shared.config.api_client.expose_secret()
    ));
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .unwrap_or("");
    let equal = given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if equal {
        Ok(())
    } else {
        Err(refuse(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "invalid API credentials",
        ))
    }
}

/// X-Idempotency-Key must be a UUID.
fn idempotency_key(headers: &HeaderMap, language: Language) -> Result<String, Reply> {
    headers
        .get("x-idempotency-key")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| uuid::Uuid::parse_str(v).ok())
        .map(|u| u.to_string())
        .ok_or_else(|| {
            refuse(
                StatusCode::BAD_REQUEST,
                "Bad Request",
                language.pick(
                    "X-Idempotency-Key must be a UUID",
                    "X-Idempotency-Key doit être un UUID",
                ),
            )
        })
}

/// What every write checks first: credentials, a UUID idempotency key, a JSON object body.
fn checked_write(
    shared: &Shared,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Language, String, Value), Reply> {
    authorized(shared, headers)?;
    let language = language(headers);
    let key = idempotency_key(headers, language)?;
    let body = json_body(body, language)?;
    Ok((language, key, body))
}

fn json_body(body: &[u8], language: Language) -> Result<Value, Reply> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| {
            refuse(
                StatusCode::BAD_REQUEST,
                "Bad Request",
                language.pick(
                    "the body must be a JSON object",
                    "le corps doit être un objet JSON",
                ),
            )
        })
}

pub(super) async fn create_session(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let answer = create_session_inner(&shared, &headers, &body).unwrap_or_else(|refused| refused);
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    shared.journal().record(JournalEntry {
        operation: "create".into(),
        reference: request["reference"].as_str().unwrap_or("").to_owned(),
        payin_reference: None,
        idempotency_key: raw_key(&headers),
        http_status: answer.0.as_u16(),
        amount: request["amount"].as_i64(),
        payin_amount: None,
    });
    answer
}

/// The idempotency key as sent, valid or not.
fn raw_key(headers: &HeaderMap) -> String {
    headers
        .get("x-idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

fn create_session_inner(
    shared: &Arc<Shared>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Reply, Reply> {
    let (language, key, body) = checked_write(shared, headers, body)?;
    let errors = validate_session(&body, &shared.config.countries, language);
    if !errors.is_empty() {
        let message = language.pick("Validation failed", "La validation a échoué");
        return Err(reply(
            StatusCode::UNPROCESSABLE_ENTITY,
            error_json(422, "Unprocessable Entity", message, errors),
        ));
    }
    let text = |key: &str| {
        body.get(key)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let request_print = format!("create:{body}");
    let mut ledger = shared.ledger();
    if let Some(answer) = replayed(&ledger, &key, &request_print) {
        return answer;
    }
    let reference = text("reference");
    if ledger.find(&reference).is_some() {
        let message = language.pick("reference already used", "référence déjà utilisée");
        return Err(refuse(StatusCode::CONFLICT, "Conflict", message));
    }
    let amount = body["amount"].as_i64().unwrap_or_default();
    let country = text("country");
    let msisdn = text("msisdn");
    let payin = SandboxPayin {
        id: new_id("pr"),
        api_reference: new_id("tr"),
        merchant_reference: reference,
        token: new_id("lk")[3..].to_owned(),
        amount,
        fee: fee_for(amount, shared.config.fee_percent),
        currency: shared
            .config
            .countries
            .currency_of(&country)
            .unwrap_or_default()
            .to_owned(),
        scenario: Scenario::for_msisdn(&msisdn),
        msisdn,
        customer_name: text("customerName").trim().to_owned(),
        success_url: body
            .pointer("/action/successUrl")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        failure_url: body
            .pointer("/action/failureUrl")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        status: "processing",
        confirmation_status: "none",
        created_at: Utc::now(),
        transaction: None,
        failure: None,
        refund: None,
    };
    let rendered = shared.render(&payin);
    let id = payin.id.clone();
    let d = shared.config.step_delay;
    let plan = match payin.scenario {
        Scenario::Interactive => vec![(shared.config.expiry, Step::Expire)],
        Scenario::Succeeds => vec![(d, Step::Accept), (d, Step::Process), (d, Step::Complete)],
        Scenario::Declined => vec![(d, Step::Decline)],
        Scenario::Expires => vec![(d, Step::Expire)],
        Scenario::TransactionFails => vec![
            (d, Step::Accept),
            (d, Step::Process),
            (d, Step::FailTransaction),
        ],
        Scenario::Silent => vec![],
    };
    ledger.insert(payin);
    ledger
        .replies
        .insert(key, (request_print, 201, rendered.clone()));
    drop(ledger);
    schedule(shared.clone(), id, plan);
    Ok(reply(StatusCode::CREATED, rendered))
}

/// A repeated X-Idempotency-Key: the first answer for the same request, 409 for another.
fn replayed(ledger: &Ledger, key: &str, request_print: &str) -> Option<Result<Reply, Reply>> {
    let (print, status, stored) = ledger.replies.get(key)?;
    if print == request_print {
        let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::OK);
        return Some(Ok(reply(status, stored.clone())));
    }
    Some(Err(refuse(
        StatusCode::CONFLICT,
        "Conflict",
        "X-Idempotency-Key already used with another request",
    )))
}

pub(super) async fn get_payin(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(reference): Path<String>,
) -> Reply {
    if let Err(refused) = authorized(&shared, &headers) {
        return refused;
    }
    let ledger = shared.ledger();
    match ledger.find(&reference) {
        Some(payin) => reply(StatusCode::OK, shared.render(payin)),
        None => {
            let message = language(&headers).pick("payin not found", "paiement introuvable");
            refuse(StatusCode::NOT_FOUND, "Not Found", message)
        }
    }
}

pub(super) async fn refund(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(reference): Path<String>,
    body: Bytes,
) -> Reply {
    let answer =
        refund_inner(&shared, &headers, &reference, &body).unwrap_or_else(|refused| refused);
    let refunded = if answer.0.is_success() {
        answer.1["amount"].as_i64()
    } else {
        serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|request| request["amount"].as_i64())
    };
    let payin = shared
        .ledger()
        .find(&reference)
        .map(|p| (p.merchant_reference.clone(), p.amount));
    shared.journal().record(JournalEntry {
        operation: "refund".into(),
        reference,
        payin_reference: payin.as_ref().map(|(r, _)| r.clone()),
        idempotency_key: raw_key(&headers),
        http_status: answer.0.as_u16(),
        amount: refunded,
        payin_amount: payin.map(|(_, amount)| amount),
    });
    answer
}

fn refund_inner(
    shared: &Shared,
    headers: &HeaderMap,
    reference: &str,
    body: &[u8],
) -> Result<Reply, Reply> {
    let (language, key, body) = checked_write(shared, headers, body)?;
    let request_print = format!("refund:{reference}:{body}");
    let mut ledger = shared.ledger();
    if let Some(answer) = replayed(&ledger, &key, &request_print) {
        return answer;
    }
    let reason = body
        .get("reason")
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim()
        .to_owned();
    if reason.is_empty() {
        let error = json!({"field": "reason", "message": language.pick("reason is required", "reason est obligatoire")});
        return Err(reply(
            StatusCode::UNPROCESSABLE_ENTITY,
            error_json(
                422,
                "Unprocessable Entity",
                "Validation failed",
                vec![error],
            ),
        ));
    }
    let shape = shared.config.shape;
    let Some(payin) = ledger.find_mut(reference) else {
        return Err(refuse(
            StatusCode::NOT_FOUND,
            "Not Found",
            language.pick("payin not found", "paiement introuvable"),
        ));
    };
    if payin.refund.is_some() {
        let message = language.pick("payin already refunded", "paiement déjà remboursé");
        return Err(refuse(StatusCode::CONFLICT, "Conflict", message));
    }
    if !payin.is_refundable() {
        let message = language.pick(
            "only a completed payin can be refunded",
            "seul un paiement abouti peut être remboursé",
        );
        return Err(refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Unprocessable Entity",
            message,
        ));
    }
    let amount = match body.get("amount") {
        None | Some(Value::Null) => payin.amount,
        Some(value) => match value.as_i64() {
            Some(a) if (1..=payin.amount).contains(&a) => a,
            _ => {
                let message = language.pick(
                    "amount must be between 1 and the payin amount",
                    "amount doit être compris entre 1 et le montant du paiement",
                );
                return Err(refuse(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Unprocessable Entity",
                    message,
                ));
            }
        },
    };
    let refund = SandboxRefund {
        reference: new_id("rf"),
        amount,
        reason,
        external_reference: body
            .get("externalReference")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        partial: amount < payin.amount,
        created_at: Utc::now(),
    };
    let rendered = payin.refund_json(&refund, shape);
    payin.refund = Some(refund);
    ledger
        .replies
        .insert(key, (request_print, 201, rendered.clone()));
    Ok(reply(StatusCode::CREATED, rendered))
}
