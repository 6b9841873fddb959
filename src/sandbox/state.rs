//! The sandbox's payins and refunds, their lifecycle, and how Novasend would render them.

use crate::domain::{Countries, Language, mask_phone};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use std::collections::HashMap;

/// Which of Novasend's two response shapes the sandbox speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResponseShape {
    /// `reference: tr_…` is Novasend's, `customerReference` the merchant's.
    Shape2025,
    /// `id: pr_…` is Novasend's, `reference` the merchant's.
    #[default]
    Shape2026,
}

/// What a payin does by itself, chosen by the last four digits of the payer's number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Waits for the payer on the payment page; expires if nobody answers.
    Interactive,
    /// 0000: accepted, processed, completed, each a step apart.
    Succeeds,
    /// 0001: declined after a step.
    Declined,
    /// 0002: expires after a step.
    Expires,
    /// 0003: accepted and processed, then the transaction fails.
    TransactionFails,
    /// 0004: never answers, never expires.
    Silent,
}

impl Scenario {
    pub fn for_msisdn(msisdn: &str) -> Self {
        match msisdn.get(msisdn.len().saturating_sub(4)..) {
            Some("0000") => Self::Succeeds,
            Some("0001") => Self::Declined,
            Some("0002") => Self::Expires,
            Some("0003") => Self::TransactionFails,
            Some("0004") => Self::Silent,
            _ => Self::Interactive,
        }
    }
}

#[derive(Debug, Clone)]
pub struct SandboxTransaction {
    pub reference: String,
    pub status: &'static str,
    pub processed_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct SandboxRefund {
    pub reference: String,
    pub amount: i64,
    pub reason: String,
    pub external_reference: String,
    pub partial: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct SandboxPayin {
    pub id: String,
    pub api_reference: String,
    pub merchant_reference: String,
    pub token: String,
    pub amount: i64,
    pub fee: i64,
    pub currency: String,
    pub msisdn: String,
    pub customer_name: String,
    pub success_url: String,
    pub failure_url: String,
    pub status: &'static str,
    pub confirmation_status: &'static str,
    pub created_at: DateTime<Utc>,
    pub transaction: Option<SandboxTransaction>,
    pub failure: Option<(String, String)>,
    pub refund: Option<SandboxRefund>,
    pub scenario: Scenario,
}

/// A step of a payin's life, as the page, a magic number or the clock makes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Accept,
    Decline,
    Expire,
    Process,
    Complete,
    FailTransaction,
}

impl SandboxPayin {
    pub fn is_final(&self) -> bool {
        self.transaction.is_some()
            || matches!(self.confirmation_status, "declined" | "expired")
            || self.status == "expired"
    }

    /// Applies a step if it still makes sense; returns the webhook event it causes.
    pub fn advance(&mut self, step: Step, now: DateTime<Utc>) -> Option<&'static str> {
        match step {
            Step::Accept if self.confirmation_status == "none" && !self.is_final() => {
                self.confirmation_status = "accepted";
                Some("payin.confirmed")
            }
            Step::Decline if self.confirmation_status == "none" && !self.is_final() => {
                self.confirmation_status = "declined";
                Some("payin.declined")
            }
            Step::Expire if self.confirmation_status == "none" && !self.is_final() => {
                self.status = "expired";
                self.confirmation_status = "expired";
                Some("payin.expired")
            }
            Step::Process
                if self.confirmation_status == "accepted" && self.status == "processing" =>
            {
                self.status = "processed";
                Some("payin.processed")
            }
            Step::Complete if self.status == "processed" && self.transaction.is_none() => {
                self.transaction = Some(self.new_transaction("completed", now));
                Some("payin.completed")
            }
            Step::FailTransaction if self.status == "processed" && self.transaction.is_none() => {
                self.transaction = Some(self.new_transaction("failed", now));
                self.failure = Some((
                    "insufficient_funds".into(),
                    "the payer's balance is too low".into(),
                ));
                Some("payin.failed")
            }
            _ => None,
        }
    }

    fn new_transaction(&self, status: &'static str, now: DateTime<Utc>) -> SandboxTransaction {
        SandboxTransaction {
            reference: format!("tr_{}", &self.token[..16]),
            status,
            processed_at: now,
        }
    }

    pub fn is_refundable(&self) -> bool {
        self.transaction
            .as_ref()
            .is_some_and(|t| t.status == "completed")
            && self.failure.is_none()
    }

    /// The payin as Novasend returns it, in the chosen shape.
    pub fn to_json(&self, shape: ResponseShape, payment_url: &str) -> Value {
        let transaction = self.transaction.as_ref().map(|t| {
            json!({
                "reference": t.reference,
                "status": t.status,
                "customerName": self.customer_name,
                "processedAt": timestamp(t.processed_at),
                "phoneNumber": self.msisdn,
                "amount": format!("{}.00", self.amount),
                "fees": format!("{}.00", self.fee),
                "chargedAmount": format!("{}.00", self.amount + self.fee),
                "currency": self.currency,
            })
        });
        let failure = self
            .failure
            .as_ref()
            .map(|(code, message)| json!({ "code": code, "message": message }));
        match shape {
            ResponseShape::Shape2026 => json!({
                "id": self.id,
                "type": "payin",
                "reference": self.merchant_reference,
                "status": self.status,
                "confirmationRequired": true,
                "confirmationStatus": self.confirmation_status,
                "paymentUrl": payment_url,
                "customer": { "name": self.customer_name, "phoneNumber": self.msisdn },
                "isDirect": false,
                "payFee": false,
                "createdAt": timestamp(self.created_at),
                "amount": self.amount,
                "fee": self.fee,
                "chargedAmount": self.amount + self.fee,
                "currency": self.currency,
                "transaction": transaction,
                "failure": failure,
            }),
            ResponseShape::Shape2025 => json!({
                "type": "payin",
                "fee": self.fee,
                "reference": self.api_reference,
                "phoneNumber": self.msisdn,
                "customerName": self.customer_name,
                "amount": self.amount,
                "chargedAmount": self.amount + self.fee,
                "status": self.status,
                "currency": self.currency,
                "customerReference": self.merchant_reference,
                "confirmationRequired": true,
                "confirmationStatus": self.confirmation_status,
                "paymentUrl": payment_url,
                "createdAt": timestamp(self.created_at),
                "transaction": transaction,
                "failure": failure,
            }),
        }
    }

    pub fn refund_json(&self, refund: &SandboxRefund, shape: ResponseShape) -> Value {
        json!({
            "type": "refund",
            "reference": refund.reference,
            "originalReference": match shape {
                ResponseShape::Shape2026 => &self.id,
                ResponseShape::Shape2025 => &self.api_reference,
            },
            "amount": refund.amount,
            "fee": 0,
            "currency": self.currency,
            "status": "processing",
            "reason": refund.reason,
            "refundType": if refund.partial { "partial" } else { "full" },
            "customerMsisdn": self.msisdn,
            "customerName": self.customer_name,
            "externalReference": refund.external_reference,
            "createdAt": timestamp(refund.created_at),
            "transaction": { "reference": format!("tr_{}", &refund.reference[3..]), "status": "pending", "processedAt": null }
        })
    }

    /// The payer's number as the payment page shows it.
    pub fn masked_payer(&self) -> String {
        mask_phone(&self.msisdn)
    }
}

fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Novasend-style identifiers: a prefix and 26 lower-case letters and digits.
pub fn new_id(prefix: &str) -> String {
    let raw = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    format!("{prefix}_{}", &raw[..26])
}

/// Fee rounded up to a whole unit: `amount × percent / 100`.
pub fn fee_for(amount: i64, fee_percent: u32) -> i64 {
    (amount * i64::from(fee_percent) + 99) / 100
}

/// Novasend's error JSON.
pub fn error_json(status: u16, error: &str, message: &str, sub_errors: Vec<Value>) -> Value {
    json!({
        "error": error,
        "statusCode": status,
        "correlationId": uuid::Uuid::new_v4().to_string(),
        "message": message,
        "subErrors": sub_errors,
    })
}

/// Checks a session request as Novasend would, in the caller's language.
pub fn validate_session(body: &Value, countries: &Countries, language: Language) -> Vec<Value> {
    let mut errors = Vec::new();
    let mut refuse = |field: &str, en: &str, fr: &str| {
        errors.push(json!({ "field": field, "message": language.pick(en, fr) }));
    };
    let text = |key: &str| body.get(key).and_then(Value::as_str).unwrap_or("");
    let reference = text("reference");
    if reference.is_empty() || reference.len() > 64 {
        refuse(
            "reference",
            "reference is required (1 to 64 characters)",
            "reference est obligatoire (1 à 64 caractères)",
        );
    }
    if body
        .get("amount")
        .and_then(Value::as_i64)
        .is_none_or(|a| a < 1)
    {
        refuse(
            "amount",
            "amount must be a positive whole number",
            "amount doit être un entier positif",
        );
    }
    if crate::domain::PhoneNumber::parse_e164(text("msisdn")).is_none() {
        refuse(
            "msisdn",
            "msisdn must be in E.164 format",
            "msisdn doit être au format E.164",
        );
    }
    if text("customerName").trim().is_empty() {
        refuse(
            "customerName",
            "customerName is required",
            "customerName est obligatoire",
        );
    }
    if countries.currency_of(text("country")).is_none() {
        refuse(
            "country",
            "country is not supported",
            "country n'est pas pris en charge",
        );
    }
    errors
}

/// Everything the sandbox knows.
#[derive(Default)]
pub struct Ledger {
    /// Boxed, so that growing the map moves pointers, not payins: a long benchmark grows it
    /// to hundreds of thousands, and the lock is held while it grows.
    pub payins: HashMap<String, Box<SandboxPayin>>,
    /// Merchant reference, API reference (tr_) and token → payin id.
    pub index: HashMap<String, String>,
    /// X-Idempotency-Key → (what it was used for, status, response body).
    pub replies: HashMap<String, (String, u16, Value)>,
}

impl Ledger {
    pub fn find(&self, reference: &str) -> Option<&SandboxPayin> {
        let id = self.index.get(reference).map_or(reference, String::as_str);
        self.payins.get(id).map(|payin| &**payin)
    }

    pub fn find_mut(&mut self, reference: &str) -> Option<&mut SandboxPayin> {
        let id = self
            .index
            .get(reference)
            .cloned()
            .unwrap_or_else(|| reference.to_owned());
        self.payins.get_mut(&id).map(|payin| &mut **payin)
    }

    pub fn insert(&mut self, payin: SandboxPayin) {
        for alias in [
            &payin.merchant_reference,
            &payin.api_reference,
            &payin.token,
        ] {
            self.index.insert(alias.clone(), payin.id.clone());
        }
        self.payins.insert(payin.id.clone(), Box::new(payin));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_numbers_pick_their_scenario() {
        assert_eq!(Scenario::for_msisdn("+2250700000000"), Scenario::Succeeds);
        assert_eq!(Scenario::for_msisdn("+2250700000001"), Scenario::Declined);
        assert_eq!(Scenario::for_msisdn("+2250700000002"), Scenario::Expires);
        assert_eq!(
            Scenario::for_msisdn("+2250700000003"),
            Scenario::TransactionFails
        );
        assert_eq!(Scenario::for_msisdn("+2250700000004"), Scenario::Silent);
        assert_eq!(
            Scenario::for_msisdn("+2250700000042"),
            Scenario::Interactive
        );
    }

    #[test]
    fn fees_round_up() {
        assert_eq!(fee_for(300, 2), 6);
        assert_eq!(fee_for(301, 2), 7);
        assert_eq!(fee_for(1, 2), 1);
        assert_eq!(fee_for(100, 0), 0);
    }
}
