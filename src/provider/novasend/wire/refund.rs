//! A refund as Novasend acknowledges it.

use super::values::{is_empty_object, timestamp, whole_units};
use crate::domain::{PhoneNumber, Refund, RefundStatus, RefundTransaction, RefundType};
use serde::Deserialize;
use serde_json::Value;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
