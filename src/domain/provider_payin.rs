//! A provider's observation of a payin.

use super::failure::Failure;
use super::next_action::NextAction;
use super::phone::PhoneNumber;
use super::status::{ConfirmationStatus, PayinStatus, Progress};
use super::transaction::Transaction;
use chrono::{DateTime, Utc};

/// What a provider says about a payin at one moment, in provider-neutral terms: the provider
/// module has already mapped its own answer onto the gateway's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderPayin {
    /// Which provider said it (its stable name).
    pub provider: &'static str,
    /// The merchant's reference, when the provider echoes it.
    pub reference: Option<String>,
    pub provider_reference: String,
    /// The gateway's status, as the provider module computed it.
    pub status: PayinStatus,
    /// The provider's own status word, shown as it is.
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
    pub created_at: Option<DateTime<Utc>>,
    pub transaction: Option<Transaction>,
    pub failure: Option<Failure>,
    /// What the payer must do next, when the provider says so.
    pub next_action: Option<NextAction>,
}

impl ProviderPayin {
    /// How far the provider says the payin has got (see `Payin::progress`).
    pub fn progress(&self) -> Progress {
        Progress {
            status: self.status,
            confirmation: self.confirmation_status,
            transaction: self.transaction.as_ref().and_then(|t| t.status),
        }
    }
}
