//! HUB2's JSON: a payment intent, read tolerantly into the gateway's terms.

use super::status::{IntentSignals, payin_status};
use crate::domain::{
    ConfirmationStatus, Failure, NextAction, NextActionKind, PhoneNumber, ProviderPayin,
};
use crate::provider::redact_phone_numbers;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

/// A payment intent as HUB2 returns it (`GET /payment-intents/{id}` and every write).
pub struct Intent {
    pub payin: ProviderPayin,
    /// Needed by the calls that act on the intent (payment attempt, authentication).
    pub token: String,
    /// Payment attempts made on it: while there is one, none is ever sent again.
    pub attempts: usize,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct IntentBody {
    id: Option<String>,
    token: Option<String>,
    purchase_reference: Option<String>,
    customer_reference: Option<String>,
    status: Option<String>,
    amount: Option<Value>,
    currency: Option<String>,
    created_at: Option<String>,
    payments: Vec<PaymentBody>,
    next_action: Option<NextActionBody>,
    last_payment_failure: Option<Value>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PaymentBody {
    status: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct NextActionBody {
    r#type: Option<String>,
    message: Option<String>,
    data: Option<NextActionData>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct NextActionData {
    url: Option<String>,
}

/// Reads an intent. An answer without an `id` or a `status` is not one.
pub fn parse_intent(bytes: &[u8]) -> Result<Intent, String> {
    let body: IntentBody = serde_json::from_slice(bytes).map_err(|e| {
        format!(
            "payment intent is not the expected JSON object (line {}, column {})",
            e.line(),
            e.column()
        )
    })?;
    let id = body
        .id
        .filter(|id| !id.is_empty())
        .ok_or("payment intent has no `id`")?;
    let raw_status = body
        .status
        .ok_or("payment intent has no `status`")?
        .trim()
        .to_ascii_lowercase();
    let latest_payment_failed = body.payments.last().is_some_and(|p| {
        p.status
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("failed"))
    });
    let failure = failure(body.last_payment_failure.as_ref()).or_else(|| {
        latest_payment_failed.then(|| Failure {
            code: "payment_failed".into(),
            message: String::new(),
        })
    });
    let status = payin_status(&IntentSignals {
        status: &raw_status,
        has_failure: failure.is_some(),
        latest_payment_failed,
    });
    let next_action = body.next_action.and_then(next_action);
    let payment_url = next_action
        .as_ref()
        .filter(|a| a.kind == NextActionKind::Redirect)
        .map(|a| a.url.clone())
        .unwrap_or_default();
    Ok(Intent {
        token: body.token.unwrap_or_default(),
        attempts: body.payments.len(),
        payin: ProviderPayin {
            provider: super::NAME,
            reference: body.purchase_reference.filter(|r| !r.is_empty()),
            provider_reference: id,
            status,
            provider_status: raw_status,
            confirmation_required: next_action.is_some(),
            confirmation_status: ConfirmationStatus::None,
            payment_url,
            // HUB2 never names the customer: the create fills in the caller's name.
            customer_name: String::new(),
            customer_phone: PhoneNumber::from_provider(body.customer_reference.unwrap_or_default()),
            amount: whole_units(body.amount.as_ref())?,
            fee: 0,
            charged_amount: 0,
            currency: body.currency.unwrap_or_default(),
            created_at: body
                .created_at
                .as_deref()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc)),
            transaction: None,
            failure,
            next_action,
        },
    })
}

fn next_action(body: NextActionBody) -> Option<NextAction> {
    let kind = match body.r#type?.trim().to_ascii_lowercase().as_str() {
        "redirection" | "redirect" => NextActionKind::Redirect,
        "ussd" => NextActionKind::Ussd,
        "otp" => NextActionKind::Otp,
        _ => return None,
    };
    Some(NextAction {
        kind,
        message: redact_phone_numbers(&body.message.unwrap_or_default()),
        url: body.data.and_then(|d| d.url).unwrap_or_default(),
    })
}

fn failure(raw: Option<&Value>) -> Option<Failure> {
    let map = raw?.as_object().filter(|m| !m.is_empty())?;
    let text = |key: &str| {
        map.get(key)
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .unwrap_or_default()
    };
    Some(Failure {
        code: redact_phone_numbers(&text("code")),
        message: redact_phone_numbers(&text("message")),
    })
}

/// HUB2 counts in the smallest unit, which for XOF and XAF is the whole franc.
fn whole_units(raw: Option<&Value>) -> Result<i64, String> {
    match raw {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| format!("amount {n} is not a whole number")),
        Some(other) => Err(format!("amount {other} is not a number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::PayinStatus;
    use serde_json::json;

    fn intent(status: &str, extra: Value) -> Vec<u8> {
        let mut body = json!({
            "id": "pi_123", "merchantId": "m_1", "token": "tok_abc",
            "createdAt": "2026-11-26T10:00:00Z", "updatedAt": "2026-11-26T10:00:05Z",
            "purchaseReference": "order-7", "customerReference": "+2250700000042",
            "status": status, "amount": 1500, "currency": "XOF", "payments": [], "mode": "live"
        });
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body.to_string().into_bytes()
    }

    #[test]
    fn reads_the_intent_of_the_seed_document() {
        let read = parse_intent(&intent("payment_required", json!({}))).unwrap();
        assert_eq!((read.token.as_str(), read.attempts), ("tok_abc", 0));
        let payin = read.payin;
        assert_eq!(payin.provider, "hub2");
        assert_eq!(payin.reference.as_deref(), Some("order-7"));
        assert_eq!(payin.provider_reference, "pi_123");
        assert_eq!(
            (payin.status, payin.provider_status.as_str()),
            (PayinStatus::Pending, "payment_required")
        );
        assert_eq!((payin.amount, payin.currency.as_str()), (1500, "XOF"));
        assert_eq!(payin.customer_phone.expose(), "+2250700000042");
        assert_eq!(payin.customer_name, "", "HUB2 never names the customer");
        assert!(payin.created_at.is_some());
        assert_eq!(payin.next_action, None);
    }

    #[test]
    fn next_actions_by_type() {
        let cases = [
            (
                "redirection",
                NextActionKind::Redirect,
                "https://pay.hub2.test/x",
            ),
            ("ussd", NextActionKind::Ussd, ""),
            ("otp", NextActionKind::Otp, ""),
        ];
        for (kind, expected, url) in cases {
            let action = json!({"nextAction": {"type": kind, "message": "Composez *144# ou appelez le 0700000042", "data": {"url": url}}});
            let payin = parse_intent(&intent("action_required", action))
                .unwrap()
                .payin;
            assert_eq!(payin.status, PayinStatus::AwaitingConfirmation);
            let next = payin.next_action.clone().unwrap();
            assert_eq!((next.kind, next.url.as_str()), (expected, url));
            assert!(next.message.ends_with("******0042"), "{}", next.message);
            let payment_url = if expected == NextActionKind::Redirect {
                url
            } else {
                ""
            };
            assert_eq!(payin.payment_url, payment_url);
        }
        let unknown = json!({"nextAction": {"type": "carrier_pigeon"}});
        let payin = parse_intent(&intent("action_required", unknown))
            .unwrap()
            .payin;
        assert_eq!(payin.next_action, None);
    }

    #[test]
    fn failures_come_from_the_last_failure_or_the_latest_attempt() {
        let failed = json!({"lastPaymentFailure": {"code": "insufficient_funds", "message": "solde insuffisant"},
                            "payments": [{"id": "pa_1", "status": "failed"}]});
        let read = parse_intent(&intent("payment_required", failed)).unwrap();
        assert_eq!(read.attempts, 1);
        assert_eq!(read.payin.status, PayinStatus::Failed);
        assert_eq!(read.payin.failure.unwrap().code, "insufficient_funds");
        // Only the latest attempt counts: an earlier failure, then one under way.
        let retried = json!({"payments": [{"id": "pa_1", "status": "failed"}, {"id": "pa_2", "status": "pending"}]});
        let read = parse_intent(&intent("processing", retried)).unwrap();
        assert_eq!(
            (read.payin.status, read.attempts),
            (PayinStatus::Processing, 2)
        );
        let latest_failed = json!({"payments": [{"id": "pa_1", "status": "failed"}]});
        let payin = parse_intent(&intent("processing", latest_failed))
            .unwrap()
            .payin;
        assert_eq!(payin.status, PayinStatus::Failed);
        assert_eq!(payin.failure.unwrap().code, "payment_failed");
    }

    #[test]
    fn refuses_what_is_not_an_intent() {
        assert!(parse_intent(b"not json").is_err());
        assert!(parse_intent(br#"{"status":"processing"}"#).is_err());
        assert!(parse_intent(br#"{"id":"pi_1"}"#).is_err());
        assert!(parse_intent(br#"{"id":"pi_1","status":"processing","amount":"12"}"#).is_err());
    }
}
