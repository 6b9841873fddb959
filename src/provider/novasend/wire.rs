//! Novasend's JSON, both response shapes (2025: `reference: tr_…` + `customerReference`;
//! 2026: `id: pr_…` + `reference` = merchant's), read tolerantly.

use super::status::{StatusSignals, payin_status};
use crate::domain::{
    ConfirmationStatus, CreatePayinCommand, Failure, PhoneNumber, ProviderPayin, Refund,
    RefundStatus, RefundTransaction, RefundType, Transaction, TransactionStatus,
};
use crate::provider::{RefundOrder, redact_phone_numbers};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateSessionBody<'a> {
    reference: &'a str,
    amount: i64,
    msisdn: &'a str,
    customer_name: &'a str,
    country: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    account_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    action: Option<Action<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Action<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    success_url: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    failure_url: &'a str,
}

impl<'a> CreateSessionBody<'a> {
    pub fn new(command: &'a CreatePayinCommand) -> Self {
        let has_action = !command.success_url.is_empty() || !command.failure_url.is_empty();
        Self {
            reference: command.reference.as_str(),
            amount: command.amount,
            msisdn: command.msisdn.expose(),
            customer_name: &command.customer_name,
            country: &command.country,
            account_id: &command.account_id,
            action: has_action.then_some(Action {
                success_url: &command.success_url,
                failure_url: &command.failure_url,
            }),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundBody<'a> {
    reason: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    external_reference: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    amount: Option<i64>,
}

impl<'a> RefundBody<'a> {
    pub fn new(order: &'a RefundOrder) -> Self {
        Self {
            reason: &order.reason,
            external_reference: &order.external_reference,
            amount: order.partial_amount,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct PayinBody {
    id: Option<String>,
    reference: Option<String>,
    customer_reference: Option<String>,
    status: Option<String>,
    confirmation_required: Option<bool>,
    confirmation_status: Option<String>,
    payment_url: Option<String>,
    customer: Option<CustomerBody>,
    customer_name: Option<String>,
    phone_number: Option<String>,
    amount: Option<Value>,
    fee: Option<Value>,
    charged_amount: Option<Value>,
    currency: Option<String>,
    created_at: Option<String>,
    transaction: Option<Value>,
    failure: Option<Value>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct CustomerBody {
    name: Option<String>,
    phone_number: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct TransactionBody {
    reference: Option<String>,
    status: Option<String>,
    customer_name: Option<String>,
    phone_number: Option<String>,
    amount: Option<Value>,
    fees: Option<Value>,
    charged_amount: Option<Value>,
    currency: Option<String>,
    processed_at: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RefundResponseBody {
    reference: Option<String>,
    original_reference: Option<String>,
    amount: Option<Value>,
    fee: Option<Value>,
    currency: Option<String>,
    status: Option<String>,
    reason: Option<String>,
    refund_type: Option<String>,
    customer_msisdn: Option<String>,
    customer_name: Option<String>,
    external_reference: Option<String>,
    created_at: Option<String>,
    transaction: Option<Value>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RefundTransactionBody {
    reference: Option<String>,
    status: Option<String>,
    processed_at: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct ErrorBody {
    error: Option<Value>,
    message: Option<Value>,
    sub_errors: Option<Value>,
    correlation_id: Option<Value>,
}

/// Reads a payin in either shape.
pub fn parse_payin(bytes: &[u8]) -> Result<ProviderPayin, String> {
    let body: PayinBody = serde_json::from_slice(bytes).map_err(|e| {
        format!(
            "payin is not the expected JSON object (line {}, column {})",
            e.line(),
            e.column()
        )
    })?;
    // 2026 shape: `id` is Novasend's, `reference` the merchant's; 2025: `reference` is
    // Novasend's and `customerReference` the merchant's.
    let (provider_reference, merchant_reference) = match body.id.filter(|id| !id.is_empty()) {
        Some(id) => (Some(id), body.reference),
        None => (body.reference, body.customer_reference),
    };
    let provider_reference = provider_reference
        .filter(|r| !r.is_empty())
        .ok_or("payin has no `id` nor `reference`")?;
    let provider_status = body
        .status
        .ok_or("payin has no `status`")?
        .to_ascii_lowercase();
    let customer = body.customer.unwrap_or_default();
    let confirmation_required = body.confirmation_required.unwrap_or(false);
    let confirmation_status = confirmation_status(body.confirmation_status.as_deref());
    let transaction = transaction(body.transaction)?;
    let failure = failure(body.failure.as_ref());
    let status = payin_status(&StatusSignals {
        provider_status: &provider_status,
        confirmation_required,
        confirmation_status,
        transaction_status: transaction.as_ref().and_then(|t| t.status),
        has_failure: failure.is_some(),
    });
    Ok(ProviderPayin {
        provider: super::NAME,
        reference: merchant_reference.filter(|r| !r.is_empty()),
        provider_reference,
        status,
        provider_status,
        confirmation_required,
        confirmation_status,
        payment_url: body.payment_url.unwrap_or_default(),
        customer_name: customer.name.or(body.customer_name).unwrap_or_default(),
        customer_phone: PhoneNumber::from_provider(
            customer
                .phone_number
                .or(body.phone_number)
                .unwrap_or_default(),
        ),
        amount: whole_units(body.amount.as_ref())?,
        fee: whole_units(body.fee.as_ref())?,
        charged_amount: whole_units(body.charged_amount.as_ref())?,
        currency: body.currency.unwrap_or_default(),
        created_at: timestamp(body.created_at.as_deref()),
        transaction,
        failure,
        // Novasend's payer acts on `paymentUrl`; it names no other next action.
        next_action: None,
    })
}

pub fn parse_refund(bytes: &[u8]) -> Result<Refund, String> {
    let body: RefundResponseBody = serde_json::from_slice(bytes).map_err(|e| {
        format!(
            "refund is not the expected JSON object (line {}, column {})",
            e.line(),
            e.column()
        )
    })?;
    let reference = body
        .reference
        .filter(|r| !r.is_empty())
        .ok_or("refund has no `reference`")?;
    let status = match body
        .status
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("pending") | None => RefundStatus::Pending,
        Some("processing") => RefundStatus::Processing,
        Some("completed" | "succeeded" | "success") => RefundStatus::Completed,
        Some("failed") => RefundStatus::Failed,
        Some(other) => return Err(format!("refund status `{other}` is unknown")),
    };
    let refund_type = match body.refund_type.as_deref() {
        Some("partial") => RefundType::Partial,
        _ => RefundType::Full,
    };
    let transaction = match body.transaction {
        Some(value @ Value::Object(_)) if !is_empty_object(&value) => {
            let t: RefundTransactionBody = serde_json::from_value(value)
                .map_err(|_| "refund transaction is not an object of strings")?;
            Some(RefundTransaction {
                reference: t.reference.unwrap_or_default(),
                status: t.status.unwrap_or_default(),
                processed_at: timestamp(t.processed_at.as_deref()),
            })
        }
        _ => None,
    };
    Ok(Refund {
        reference,
        original_reference: body.original_reference.unwrap_or_default(),
        amount: whole_units(body.amount.as_ref())?,
        fee: whole_units(body.fee.as_ref())?,
        currency: body.currency.unwrap_or_default(),
        status,
        reason: body.reason.unwrap_or_default(),
        refund_type,
        customer_msisdn: PhoneNumber::from_provider(body.customer_msisdn.unwrap_or_default()),
        customer_name: body.customer_name.unwrap_or_default(),
        external_reference: body.external_reference.unwrap_or_default(),
        created_at: timestamp(body.created_at.as_deref()),
        transaction,
        requested_with: String::new(),
    })
}

/// Novasend's error JSON `{error, statusCode, correlationId, message, subErrors}`, reduced to
/// one line for the caller, with phone numbers masked. Returns the correlation id for logs.
pub fn parse_error(bytes: &[u8], status: u16) -> (String, Option<String>) {
    let body: ErrorBody = serde_json::from_slice(bytes).unwrap_or_default();
    let mut parts: Vec<String> = Vec::new();
    for value in [body.message.as_ref(), body.error.as_ref()]
        .into_iter()
        .flatten()
    {
        let text = text_of(value);
        if !text.is_empty() {
            parts.push(text);
            break;
        }
    }
    if let Some(Value::Array(subs)) = &body.sub_errors {
        parts.extend(subs.iter().map(text_of).filter(|t| !t.is_empty()));
    }
    if parts.is_empty() {
        parts.push(format!("HTTP {status}"));
    }
    let correlation_id = body
        .correlation_id
        .as_ref()
        .map(text_of)
        .filter(|c| !c.is_empty());
    (
        redact_phone_numbers(&parts.join("; ")),
        correlation_id.map(|id| redact_phone_numbers(&id)),
    )
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(text_of)
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join("; "),
        Value::Object(map) => {
            let field = map
                .get("field")
                .or_else(|| map.get("property"))
                .map(text_of);
            let message = map
                .get("message")
                .or_else(|| map.get("error"))
                .map(text_of)
                .unwrap_or_default();
            match field {
                Some(f) if !f.is_empty() => format!("{f}: {message}"),
                _ => message,
            }
        }
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn confirmation_status(raw: Option<&str>) -> ConfirmationStatus {
    match raw.map(str::to_ascii_lowercase).as_deref() {
        Some("pending") => ConfirmationStatus::Pending,
        Some("accepted" | "confirmed") => ConfirmationStatus::Accepted,
        Some("declined" | "rejected") => ConfirmationStatus::Declined,
        Some("expired") => ConfirmationStatus::Expired,
        _ => ConfirmationStatus::None,
    }
}

fn transaction(raw: Option<Value>) -> Result<Option<Transaction>, String> {
    let value = match raw {
        Some(value @ Value::Object(_)) if !is_empty_object(&value) => value,
        Some(Value::Object(_) | Value::Null) | None => return Ok(None),
        Some(_) => return Err("`transaction` is neither an object nor null".into()),
    };
    let t: TransactionBody =
        serde_json::from_value(value).map_err(|_| "`transaction` has fields of the wrong type")?;
    let status = match t.status.as_deref().map(str::to_ascii_lowercase).as_deref() {
        Some("completed" | "success" | "succeeded") => Some(TransactionStatus::Completed),
        Some("failed" | "failure") => Some(TransactionStatus::Failed),
        Some("pending" | "processing") => Some(TransactionStatus::Pending),
        _ => None,
    };
    Ok(Some(Transaction {
        reference: t.reference.unwrap_or_default(),
        status,
        customer_name: t.customer_name.unwrap_or_default(),
        phone_number: PhoneNumber::from_provider(t.phone_number.unwrap_or_default()),
        amount: decimal_string(t.amount.as_ref()),
        fees: decimal_string(t.fees.as_ref()),
        charged_amount: decimal_string(t.charged_amount.as_ref()),
        currency: t.currency.unwrap_or_default(),
        processed_at: timestamp(t.processed_at.as_deref()),
    }))
}

/// `failure` counts only as a non-empty object (null and `{}` mean no failure).
fn failure(raw: Option<&Value>) -> Option<Failure> {
    let Some(Value::Object(map)) = raw else {
        return None;
    };
    if map.is_empty() {
        return None;
    }
    let code = map
        .get("code")
        .or_else(|| map.get("error"))
        .map(text_of)
        .unwrap_or_default();
    let message = map
        .get("message")
        .or_else(|| map.get("reason"))
        .map(text_of)
        .unwrap_or_default();
    Some(Failure {
        code: redact_phone_numbers(&code),
        message: redact_phone_numbers(&message),
    })
}

fn is_empty_object(value: &Value) -> bool {
    value.as_object().is_some_and(|m| m.is_empty())
}

/// Amounts are whole currency units; Novasend sends numbers, sometimes as strings.
fn whole_units(raw: Option<&Value>) -> Result<i64, String> {
    let as_float = |f: f64| {
        if f.is_finite() && f.abs() < 9e15 {
            Ok(f.round() as i64)
        } else {
            Err(format!("amount {f} is out of range"))
        }
    };
    match raw {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(i) => Ok(i),
            None => as_float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Some(Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| format!("amount `{s}` is not a number"))
            .and_then(as_float),
        Some(other) => Err(format!("amount {other} is not a number")),
    }
}

fn decimal_string(raw: Option<&Value>) -> String {
    match raw {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

fn timestamp(raw: Option<&str>) -> Option<DateTime<Utc>> {
    raw.and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::PayinStatus;

    const SHAPE_2025_STATUS: &str = r#"{
      "type": "payin", "fee": 6, "reference": "mtr_fhscgaywizujwjyymlge1hncaq",
      "phoneNumber": "+2250700000000", "customerName": "John Doe", "amount": 300,
      "chargedAmount": 306, "status": "processed", "currency": "XOF",
      "customerReference": "55a4e677-5700-4ed0-9a2a-9300db894ddb",
      "confirmationRequired": true, "confirmationStatus": "none",
      "createdAt": "2025-08-22T02:00:16.026Z",
      "transaction": { "reference": "tr_dkjd5ljficphlqmt", "status": "completed",
        "customerName": "dd soûl", "processedAt": "2025-11-05T16:12:42.096Z",
        "phoneNumber": "+2250700000000", "amount": "153.00", "fees": "0.00",
        "chargedAmount": "153.00", "currency": "XOF" },
      "failure": null }"#;

    const SHAPE_2026: &str = r#"{
      "id": "pr_bakvkozbmqcmte1d8izelffjlz", "type": "payin",
      "reference": "0f3fed58-0590-434e-8a00-5d6cd3560382", "status": "processing",
      "confirmationRequired": true, "confirmationStatus": "none",
      "paymentUrl": "https://business.novasend.app/link/QGRD4D",
      "customer": { "name": "Aziz", "phoneNumber": "+2250700000042" },
      "isDirect": false, "payFee": false, "createdAt": "2026-01-19T09:11:25.832Z",
      "amount": 200, "fee": 7, "chargedAmount": 207, "currency": "XOF", "failure": null }"#;

    #[test]
    fn reads_the_2025_shape() {
        let payin = parse_payin(SHAPE_2025_STATUS.as_bytes()).unwrap();
        assert_eq!(payin.provider_reference, "mtr_fhscgaywizujwjyymlge1hncaq");
        assert_eq!(
            payin.reference.as_deref(),
            Some("55a4e677-5700-4ed0-9a2a-9300db894ddb")
        );
        assert_eq!(payin.customer_name, "John Doe");
        assert_eq!(payin.customer_phone.expose(), "+2250700000000");
        assert_eq!(
            (payin.amount, payin.fee, payin.charged_amount),
            (300, 6, 306)
        );
        let t = payin.transaction.as_ref().unwrap();
        assert_eq!(t.amount, "153.00");
        assert_eq!(t.status, Some(TransactionStatus::Completed));
        assert!(t.processed_at.is_some());
        assert_eq!(payin.status, PayinStatus::Succeeded);
    }

    #[test]
    fn reads_the_2026_shape() {
        let payin = parse_payin(SHAPE_2026.as_bytes()).unwrap();
        assert_eq!(payin.provider_reference, "pr_bakvkozbmqcmte1d8izelffjlz");
        assert_eq!(
            payin.reference.as_deref(),
            Some("0f3fed58-0590-434e-8a00-5d6cd3560382")
        );
        assert_eq!(payin.customer_name, "Aziz");
        assert_eq!(
            payin.payment_url,
            "https://business.novasend.app/link/QGRD4D"
        );
        assert_eq!(payin.status, PayinStatus::AwaitingConfirmation);
        assert!(payin.created_at.is_some());
    }

    #[test]
    fn empty_transaction_and_failure_mean_none() {
        let body = r#"{"id":"pr_1","status":"processed","transaction":{},"failure":{}}"#;
        let payin = parse_payin(body.as_bytes()).unwrap();
        assert!(payin.transaction.is_none() && payin.failure.is_none());
        assert_eq!(payin.status, PayinStatus::Processing);
        let failed = r#"{"id":"pr_1","status":"processed","failure":{"code":"E42","message":"insufficient funds for +2250700000042"}}"#;
        let payin = parse_payin(failed.as_bytes()).unwrap();
        assert_eq!(
            payin.failure.as_ref().unwrap().message,
            "insufficient funds for **********0042"
        );
        assert_eq!(payin.status, PayinStatus::Failed);
    }

    #[test]
    fn refuses_what_is_not_a_payin() {
        for body in [
            "",
            "nope",
            "[]",
            r#"{"status":"processing"}"#,
            r#"{"id":"pr_1"}"#,
            r#"{"id":"pr_1","status":"x","amount":"abc"}"#,
            r#"{"id":"pr_1","status":"x","transaction":"weird"}"#,
        ] {
            assert!(parse_payin(body.as_bytes()).is_err(), "{body}");
        }
    }

    #[test]
    fn reads_a_refund() {
        let body = r#"{ "type": "refund", "reference": "rf_1", "originalReference": "tr_1",
          "amount": 150, "fee": 0, "currency": "XOF", "status": "processing",
          "reason": "Client cancellation", "refundType": "partial",
          "customerMsisdn": "+2250702968786", "customerName": "John",
          "createdAt": "2025-08-23T12:34:48.189Z",
          "transaction": { "reference": "tr_rf84dhf9pqiuhd38", "status": "pending", "processedAt": null } }"#;
        let refund = parse_refund(body.as_bytes()).unwrap();
        assert_eq!(refund.reference, "rf_1");
        assert_eq!(refund.refund_type, RefundType::Partial);
        assert_eq!(refund.status, RefundStatus::Processing);
        assert_eq!(refund.transaction.unwrap().reference, "tr_rf84dhf9pqiuhd38");
    }

    #[test]
    fn reads_error_bodies() {
        let body = r#"{"error":"Unprocessable Entity","statusCode":422,"correlationId":"c-1","message":"Validation failed","subErrors":[{"field":"msisdn","message":"+2250700000042 is not reachable"}]}"#;
        let (message, correlation) = parse_error(body.as_bytes(), 422);
        assert_eq!(
            message,
            "Validation failed; msisdn: **********0042 is not reachable"
        );
        assert_eq!(correlation.as_deref(), Some("c-1"));
        assert_eq!(parse_error(b"<html>", 502).0, "HTTP 502");
        assert_eq!(parse_error(br#"{"message":["a","b"]}"#, 400).0, "a; b");
    }
}
