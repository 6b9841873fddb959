//! The settlement transaction behind a payin.

use super::phone::PhoneNumber;
use super::status::TransactionStatus;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The settlement transaction Novasend reports once the payment is processed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    pub reference: String,
    pub status: Option<TransactionStatus>,
    pub customer_name: String,
    pub phone_number: PhoneNumber,
    /// Decimal strings, as Novasend sends them.
    pub amount: String,
    pub fees: String,
    pub charged_amount: String,
    pub currency: String,
    pub processed_at: Option<DateTime<Utc>>,
}
