//! The sandbox's HUB2 payment intents: one payment attempt each, the next action its
//! operator asks for, their life step by step, and the JSON HUB2 returns (the seed
//! document's fields, in `json.rs`). Pure: the clock is an argument, timers live in the
//! caller.

use crate::domain::mask_phone;
use crate::sandbox::state::{Scenario, new_id};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::time::Duration;

/// The one-time code every OTP intent of the sandbox accepts (documented in the README).
pub const OTP_CODE: &str = "123456";

/// The operators HUB2 takes, by the name its `provider` field uses.
pub const OPERATORS: [&str; 4] = ["orange", "mtn", "moov", "wave"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntentStatus {
    PaymentRequired,
    ActionRequired,
    Processing,
    Successful,
    Canceled,
}

impl IntentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PaymentRequired => "payment_required",
            Self::ActionRequired => "action_required",
            Self::Processing => "processing",
            Self::Successful => "successful",
            Self::Canceled => "canceled",
        }
    }
}

/// What the payer must do to validate the attempt, by operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionKind {
    /// A code received by SMS, sent back through `/authentication`.
    Otp,
    /// A USSD prompt on the payer's phone (the sandbox's payer page stands in for it).
    Ussd,
    /// The operator's page (the sandbox's payer page).
    Redirection,
}

impl ActionKind {
    /// Orange asks for a code, MTN prompts over USSD, Moov and Wave send the payer to a
    /// page: one operator per kind, so a test can reach each by choosing the operator.
    pub fn for_operator(operator: &str) -> Option<Self> {
        match operator {
            "orange" => Some(Self::Otp),
            "mtn" => Some(Self::Ussd),
            "moov" | "wave" => Some(Self::Redirection),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptStatus {
    Pending,
    Successful,
    Failed,
    /// The intent was canceled under it: not a failure of the payer's (§9 maps the intent
    /// to EXPIRED, which a `failed` latest attempt would turn into FAILED).
    Canceled,
}

impl AttemptStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Successful => "successful",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
        }
    }
}

/// A payment attempt (`POST /payment-intents/{id}/payments`).
#[derive(Debug, Clone)]
pub struct Attempt {
    pub id: String,
    pub operator: String,
    pub country: String,
    pub msisdn: String,
    pub status: AttemptStatus,
    pub success_url: String,
    pub failure_url: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct Intent {
    pub id: String,
    pub token: String,
    pub merchant_id: String,
    pub purchase_reference: String,
    pub customer_reference: String,
    pub amount: i64,
    pub currency: String,
    pub status: IntentStatus,
    /// At most one: the sandbox, like the gateway, never pays an intent twice.
    pub attempt: Option<Attempt>,
    /// Set while `action_required`.
    pub action: Option<ActionKind>,
    /// `lastPaymentFailure`: code and message.
    pub failure: Option<(&'static str, &'static str)>,
    /// Chosen by the payer's number: the customer reference first, the attempt's msisdn
    /// once there is one.
    pub scenario: Scenario,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A step of an intent's life, as the payer page, the OTP, a magic number or the clock
/// makes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The payer validated (page or right code): processing.
    Accept,
    /// The payer refused: the attempt failed.
    Decline,
    /// Nobody answered in time: canceled.
    Expire,
    /// The money moved: successful.
    Complete,
    /// The money did not move: the attempt failed.
    Fail,
}

/// Why an attempt is refused once its body is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptRefused {
    AlreadyAttempted,
    NotPayable(IntentStatus),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeRefused {
    /// The intent does not wait for a code (no OTP action, or no longer).
    NotExpected,
    Wrong,
}

impl Intent {
    pub fn new(
        merchant_id: &str,
        purchase_reference: String,
        customer_reference: String,
        amount: i64,
        currency: String,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id: new_id("pi"),
            token: new_id("tok"),
            merchant_id: merchant_id.to_owned(),
            scenario: Scenario::for_msisdn(&customer_reference),
            purchase_reference,
            customer_reference,
            amount,
            currency,
            status: IntentStatus::PaymentRequired,
            attempt: None,
            action: None,
            failure: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// Successful, canceled, or its attempt failed: nothing more happens to it.
    pub fn is_final(&self) -> bool {
        matches!(
            self.status,
            IntentStatus::Successful | IntentStatus::Canceled
        ) || self.failure.is_some()
    }

    /// Records the payment attempt and asks for its operator's action.
    pub fn attempt(
        &mut self,
        attempt: Attempt,
        action: ActionKind,
        now: DateTime<Utc>,
    ) -> Result<&'static str, AttemptRefused> {
        if self.attempt.is_some() {
            return Err(AttemptRefused::AlreadyAttempted);
        }
        if self.status != IntentStatus::PaymentRequired {
            return Err(AttemptRefused::NotPayable(self.status));
        }
        self.scenario = Scenario::for_msisdn(&attempt.msisdn);
        self.attempt = Some(attempt);
        self.status = IntentStatus::ActionRequired;
        self.action = Some(action);
        self.updated_at = now;
        Ok("payment_intent.action_required")
    }

    /// The payer's one-time code: the right one accepts the attempt.
    pub fn authenticate(
        &mut self,
        code: &str,
        now: DateTime<Utc>,
    ) -> Result<&'static str, CodeRefused> {
        if self.status != IntentStatus::ActionRequired || self.action != Some(ActionKind::Otp) {
            return Err(CodeRefused::NotExpected);
        }
        if code != OTP_CODE {
            return Err(CodeRefused::Wrong);
        }
        self.advance(Step::Accept, now)
            .ok_or(CodeRefused::NotExpected)
    }

    /// Applies a step if it still makes sense; returns the webhook event it causes.
    pub fn advance(&mut self, step: Step, now: DateTime<Utc>) -> Option<&'static str> {
        let waiting = self.status == IntentStatus::ActionRequired;
        let event = match step {
            Step::Accept if waiting => {
                self.status = IntentStatus::Processing;
                "payment_intent.processing"
            }
            Step::Decline if waiting => {
                self.fail_attempt(("payment_declined", "the payer declined the payment"));
                "payment_intent.payment_failed"
            }
            // An intent waiting for its attempt, or for its payer; never a silent one.
            Step::Expire
                if (waiting || self.status == IntentStatus::PaymentRequired)
                    && !self.is_final()
                    && self.scenario != Scenario::Silent =>
            {
                self.status = IntentStatus::Canceled;
                if let Some(attempt) = self.attempt.as_mut() {
                    attempt.status = AttemptStatus::Canceled;
                }
                "payment_intent.canceled"
            }
            Step::Complete if self.status == IntentStatus::Processing => {
                self.status = IntentStatus::Successful;
                if let Some(attempt) = self.attempt.as_mut() {
                    attempt.status = AttemptStatus::Successful;
                }
                "payment_intent.succeeded"
            }
            Step::Fail if self.status == IntentStatus::Processing => {
                self.fail_attempt(("insufficient_funds", "the payer's balance is too low"));
                "payment_intent.payment_failed"
            }
            _ => return None,
        };
        self.action = None;
        self.updated_at = now;
        Some(event)
    }

    /// HUB2 puts an intent whose attempt failed back to `payment_required`, with the failure
    /// in `lastPaymentFailure`.
    fn fail_attempt(&mut self, failure: (&'static str, &'static str)) {
        self.status = IntentStatus::PaymentRequired;
        self.failure = Some(failure);
        if let Some(attempt) = self.attempt.as_mut() {
            attempt.status = AttemptStatus::Failed;
        }
    }

    /// What follows an attempt by itself, by magic number; `Interactive` waits for the payer
    /// (and the expiry set at the intent's creation).
    pub fn plan_after_attempt(&self, step_delay: Duration) -> Vec<(Duration, Step)> {
        let d = step_delay;
        match self.scenario {
            Scenario::Interactive | Scenario::Silent => vec![],
            Scenario::Succeeds => vec![(d, Step::Accept), (d, Step::Complete)],
            Scenario::Declined => vec![(d, Step::Decline)],
            Scenario::Expires => vec![(d, Step::Expire)],
            Scenario::TransactionFails => vec![(d, Step::Accept), (d, Step::Fail)],
        }
    }

    /// What follows the payer's acceptance: the money moves, unless the number says the
    /// transaction fails.
    pub fn plan_after_accept(&self, step_delay: Duration) -> Vec<(Duration, Step)> {
        match self.scenario {
            Scenario::TransactionFails => vec![(step_delay, Step::Fail)],
            _ => vec![(step_delay, Step::Complete)],
        }
    }

    /// The payer's number as the payer page shows it.
    pub fn masked_payer(&self) -> String {
        let number = self
            .attempt
            .as_ref()
            .map_or(&self.customer_reference, |a| &a.msisdn);
        mask_phone(number)
    }
}

/// Every intent the sandbox holds, found by id, purchase reference or token.
#[derive(Default)]
pub struct Intents {
    /// Boxed, like the Novasend ledger: growing the map moves pointers, not intents.
    by_id: HashMap<String, Box<Intent>>,
    ids: HashMap<String, String>,
}

impl Intents {
    pub fn get(&self, id: &str) -> Option<&Intent> {
        self.by_id.get(id).map(|i| &**i)
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut Intent> {
        self.by_id.get_mut(id).map(|i| &mut **i)
    }

    /// The intent a payer page token opens.
    pub fn by_token(&self, token: &str) -> Option<&Intent> {
        let id = self.ids.get(&format!("token:{token}"))?;
        self.get(id)
    }

    pub fn insert(&mut self, intent: Intent) {
        self.ids
            .insert(format!("token:{}", intent.token), intent.id.clone());
        self.by_id.insert(intent.id.clone(), Box::new(intent));
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
