//! An intent as HUB2 returns it: the seed document's fields, its one attempt in
//! `payments[]`, `nextAction` while the payer must act, `lastPaymentFailure` once it failed.

use super::state::{ActionKind, Intent, IntentStatus, OTP_CODE};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

impl Intent {
    /// The intent as HUB2 returns it; `page_url` is the sandbox's payer page for it.
    pub fn to_json(&self, page_url: &str) -> Value {
        let payments: Vec<Value> = self
            .attempt
            .iter()
            .map(|a| {
                json!({
                    "id": a.id,
                    "intentId": self.id,
                    "status": a.status.as_str(),
                    "amount": self.amount,
                    "currency": self.currency,
                    "method": "mobile_money",
                    "provider": a.operator,
                    "country": a.country,
                    "createdAt": timestamp(a.created_at),
                })
            })
            .collect();
        let mut body = json!({
            "id": self.id,
            "merchantId": self.merchant_id,
            "createdAt": timestamp(self.created_at),
            "updatedAt": timestamp(self.updated_at),
            "token": self.token,
            "purchaseReference": self.purchase_reference,
            "customerReference": self.customer_reference,
            "status": self.status.as_str(),
            "amount": self.amount,
            "currency": self.currency,
            "payments": payments,
            "mode": "sandbox",
        });
        if let Some(action) = self
            .action
            .filter(|_| self.status == IntentStatus::ActionRequired)
        {
            body["nextAction"] = next_action(action, self.operator(), page_url);
        }
        if let Some((code, message)) = self.failure {
            body["lastPaymentFailure"] = json!({ "code": code, "message": message });
        }
        body
    }

    fn operator(&self) -> &str {
        self.attempt.as_ref().map_or("", |a| a.operator.as_str())
    }
}

/// The action as HUB2 describes it. The messages carry no amount and no number: the
/// gateway masks long digit runs in them.
fn next_action(kind: ActionKind, operator: &str, page_url: &str) -> Value {
    match kind {
        ActionKind::Otp => json!({
            "type": "otp",
            "message": format!("Enter the code you received by SMS (sandbox: the code is always {OTP_CODE})."),
        }),
        // A real USSD prompt has no URL; the sandbox's page plays the payer's phone.
        ActionKind::Ussd => json!({
            "type": "ussd",
            "message": format!("Dial {} on your phone and approve the payment.", ussd_code(operator)),
            "data": { "url": page_url },
        }),
        ActionKind::Redirection => json!({
            "type": "redirection",
            "message": "Finish the payment on the operator's page.",
            "data": { "url": page_url, "method": "GET" },
        }),
    }
}

fn ussd_code(operator: &str) -> &'static str {
    match operator {
        "mtn" => "*133#",
        "moov" => "*155#",
        _ => "*144#",
    }
}

fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}
