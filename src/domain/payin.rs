//! The payin as this service keeps it, and how a provider observation is applied to it.

use super::failure::Failure;
use super::next_action::NextAction;
use super::observation_source::ObservationSource;
use super::phone::PhoneNumber;
use super::provider_payin::ProviderPayin;
use super::refund::Refund;
use super::status::{ConfirmationStatus, PayinStatus, Progress};
use super::transaction::Transaction;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The payin as stored in the cache and returned to callers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payin {
    pub reference: String,
    /// The provider that holds it (its stable name): every later read, refund and webhook of
    /// this payin goes to that provider.
    #[serde(default = "provider_of_older_records")]
    pub provider: String,
    pub provider_reference: String,
    pub status: PayinStatus,
    pub provider_status: String,
    pub confirmation_required: bool,
    pub confirmation_status: ConfirmationStatus,
    pub payment_url: String,
    pub customer_name: String,
    pub customer_phone: PhoneNumber,
    pub amount: i64,
    pub fee: i64,
    pub charged_amount: i64,
    pub currency: String,
    pub country: String,
    pub account_id: String,
    pub created_at: DateTime<Utc>,
    /// When this service last saw a change.
    pub updated_at: DateTime<Utc>,
    /// When this service last asked the provider (drives cache freshness).
    pub checked_at: DateTime<Utc>,
    pub transaction: Option<Transaction>,
    pub failure: Option<Failure>,
    pub refund: Option<Refund>,
    /// Only while the payin awaits confirmation.
    #[serde(default)]
    pub next_action: Option<NextAction>,
    /// Bumped on every write; the store uses it for compare-and-set.
    pub version: u64,
    /// Where the last change a caller can see came from.
    #[serde(default)]
    pub last_source: ObservationSource,
}

/// What applying an observation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Something a caller can see changed.
    Changed { previous: PayinStatus },
    /// The observation said nothing new.
    Unchanged,
    /// The observation contradicts what is known (it would move the status backwards or out
    /// of a terminal state); it was not applied.
    Contradicted { observed: PayinStatus },
}

impl Payin {
    /// A payin as first seen, from the provider's answer to its creation (or a reconciliation).
    pub fn first_seen(
        merchant_reference: &str,
        country: &str,
        account_id: &str,
        observed: ProviderPayin,
        now: DateTime<Utc>,
    ) -> Self {
        let status = observed.status;
        Payin {
            reference: merchant_reference.to_owned(),
            provider: observed.provider.to_owned(),
            provider_reference: observed.provider_reference,
            status,
            provider_status: observed.provider_status,
            confirmation_required: observed.confirmation_required,
            confirmation_status: observed.confirmation_status,
            payment_url: observed.payment_url,
            customer_name: observed.customer_name,
            customer_phone: observed.customer_phone,
            amount: observed.amount,
            fee: observed.fee,
            charged_amount: observed.charged_amount,
            currency: observed.currency,
            country: country.to_owned(),
            account_id: account_id.to_owned(),
            created_at: observed.created_at.unwrap_or(now),
            updated_at: now,
            checked_at: now,
            next_action: observed
                .next_action
                .filter(|_| status == PayinStatus::AwaitingConfirmation),
            transaction: observed.transaction,
            failure: observed.failure,
            refund: None,
            version: 0,
            last_source: ObservationSource::Api,
        }
    }

    /// Applies a later observation under the never-backwards rule. Fields the provider left
    /// empty keep what was known; a contradicting observation changes nothing but `checked_at`.
    pub fn apply(&mut self, observed: ProviderPayin, now: DateTime<Utc>) -> Applied {
        self.checked_at = now;
        let observed_progress = observed.progress();
        let observed_status = observed_progress.status;
        if !self.progress().may_become(&observed_progress) {
            return Applied::Contradicted {
                observed: observed_status,
            };
        }
        let before = self.clone();
        self.status = observed_status;
        self.provider_status = observed.provider_status;
        self.confirmation_required = observed.confirmation_required;
        self.confirmation_status = observed.confirmation_status;
        keep_unless_empty(&mut self.provider_reference, observed.provider_reference);
        keep_unless_empty(&mut self.payment_url, observed.payment_url);
        keep_unless_empty(&mut self.customer_name, observed.customer_name);
        if !observed.customer_phone.expose().is_empty() {
            self.customer_phone = observed.customer_phone;
        }
        if observed.amount > 0 {
            self.amount = observed.amount;
        }
        if observed.charged_amount > 0 {
            self.fee = observed.fee;
            self.charged_amount = observed.charged_amount;
        }
        keep_unless_empty(&mut self.currency, observed.currency);
        if observed.transaction.is_some() {
            self.transaction = observed.transaction;
        }
        if observed.failure.is_some() {
            self.failure = observed.failure;
        }
        // A next action is the provider's current demand: it goes when the provider stops
        // asking, and with the wait for confirmation.
        self.next_action = observed
            .next_action
            .filter(|_| self.status == PayinStatus::AwaitingConfirmation);
        let mut comparable = self.clone();
        comparable.checked_at = before.checked_at;
        if comparable == before {
            Applied::Unchanged
        } else {
            self.updated_at = now;
            Applied::Changed {
                previous: before.status,
            }
        }
    }

    /// What a stream reports a change of: the status and the layers it is computed from.
    pub fn progress(&self) -> Progress {
        Progress {
            status: self.status,
            confirmation: self.confirmation_status,
            transaction: self.transaction.as_ref().and_then(|t| t.status),
        }
    }
}

/// Payins cached before the gateway had a second provider were all Novasend's.
fn provider_of_older_records() -> String {
    "novasend".to_owned()
}

fn keep_unless_empty(field: &mut String, observed: String) {
    if !observed.is_empty() {
        *field = observed;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::TransactionStatus;

    /// What a provider module would report: the status it computed, and the raw word.
    fn observation(status: PayinStatus, confirmation: ConfirmationStatus) -> ProviderPayin {
        ProviderPayin {
            provider: "test",
            reference: Some("order-1".into()),
            provider_reference: "pr_1".into(),
            status,
            provider_status: format!("{status:?}").to_lowercase(),
            confirmation_required: true,
            confirmation_status: confirmation,
            payment_url: "http://pay/1".into(),
            customer_name: "Awa".into(),
            customer_phone: PhoneNumber::from_provider("+2250700000042"),
            amount: 300,
            fee: 6,
            charged_amount: 306,
            currency: "XOF".into(),
            created_at: None,
            transaction: None,
            failure: None,
            next_action: None,
        }
    }

    fn completed() -> Transaction {
        Transaction {
            reference: "tr_1".into(),
            status: Some(TransactionStatus::Completed),
            customer_name: "Awa".into(),
            phone_number: PhoneNumber::from_provider("+2250700000042"),
            amount: "300.00".into(),
            fees: "6.00".into(),
            charged_amount: "306.00".into(),
            currency: "XOF".into(),
            processed_at: None,
        }
    }

    #[test]
    fn applies_progress_and_refuses_contradictions() {
        let t0 = Utc::now();
        let mut payin = Payin::first_seen(
            "order-1",
            "CI",
            "",
            observation(PayinStatus::AwaitingConfirmation, ConfirmationStatus::None),
            t0,
        );
        assert_eq!(payin.status, PayinStatus::AwaitingConfirmation);

        let same = payin.apply(
            observation(PayinStatus::AwaitingConfirmation, ConfirmationStatus::None),
            t0,
        );
        assert_eq!(same, Applied::Unchanged);

        let accepted = payin.apply(
            observation(PayinStatus::Processing, ConfirmationStatus::Accepted),
            t0,
        );
        assert_eq!(
            accepted,
            Applied::Changed {
                previous: PayinStatus::AwaitingConfirmation
            }
        );

        let stale = payin.apply(
            observation(PayinStatus::AwaitingConfirmation, ConfirmationStatus::None),
            t0,
        );
        assert_eq!(
            stale,
            Applied::Contradicted {
                observed: PayinStatus::AwaitingConfirmation
            }
        );
        assert_eq!(payin.status, PayinStatus::Processing);

        let mut done = observation(PayinStatus::Succeeded, ConfirmationStatus::Accepted);
        done.transaction = Some(completed());
        assert!(matches!(payin.apply(done, t0), Applied::Changed { .. }));
        assert_eq!(payin.status, PayinStatus::Succeeded);

        let lie = payin.apply(
            observation(PayinStatus::Expired, ConfirmationStatus::Expired),
            t0,
        );
        assert_eq!(
            lie,
            Applied::Contradicted {
                observed: PayinStatus::Expired
            }
        );
        assert_eq!(payin.status, PayinStatus::Succeeded);
        assert!(payin.transaction.is_some());
    }

    #[test]
    fn a_next_action_lasts_while_the_payin_awaits_confirmation() {
        use crate::domain::{NextAction, NextActionKind};
        let otp = NextAction {
            kind: NextActionKind::Otp,
            message: "enter the code".into(),
            url: String::new(),
        };
        let t0 = Utc::now();
        let mut asking = observation(PayinStatus::AwaitingConfirmation, ConfirmationStatus::None);
        asking.next_action = Some(otp.clone());
        let mut payin = Payin::first_seen("order-1", "CI", "", asking, t0);
        assert_eq!(payin.next_action, Some(otp));
        // Processing: the demand is over, whatever the provider still repeats.
        let mut moved = observation(PayinStatus::Processing, ConfirmationStatus::Accepted);
        moved.next_action = payin.next_action.clone();
        assert!(matches!(payin.apply(moved, t0), Applied::Changed { .. }));
        assert_eq!(payin.next_action, None);
        // Never shown on a payin first seen past the wait.
        let mut late = observation(PayinStatus::Processing, ConfirmationStatus::Accepted);
        late.next_action = Some(NextAction {
            kind: NextActionKind::Ussd,
            message: "*144#".into(),
            url: String::new(),
        });
        assert_eq!(
            Payin::first_seen("order-2", "CI", "", late, t0).next_action,
            None
        );
    }
}
