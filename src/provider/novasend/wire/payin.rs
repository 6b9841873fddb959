//! A payin as Novasend answers it, in either shape, mapped onto the gateway's status.

use super::values::{decimal_string, is_empty_object, text_of, timestamp, whole_units};
use crate::domain::{
    ConfirmationStatus, Failure, PhoneNumber, ProviderPayin, Transaction, TransactionStatus,
};
use crate::provider::novasend::NAME;
use crate::provider::novasend::status::{StatusSignals, payin_status};
use crate::provider::redact_phone_numbers;
use serde::Deserialize;
use serde_json::Value;

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
        provider: NAME,
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
}
