//! A refund as the provider acknowledged it, with its status, type and transaction.

use super::phone::PhoneNumber;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    Pending,
    Processing,
    Completed,
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundType {
    Full,
    Partial,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundTransaction {
    pub reference: String,
    pub status: String,
    pub processed_at: Option<DateTime<Utc>>,
}

/// A refund as Novasend acknowledged it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    pub reference: String,
    pub original_reference: String,
    pub amount: i64,
    pub fee: i64,
    pub currency: String,
    pub status: RefundStatus,
    pub reason: String,
    pub refund_type: RefundType,
    pub customer_msisdn: PhoneNumber,
    pub customer_name: String,
    pub external_reference: String,
    pub created_at: Option<DateTime<Utc>>,
    pub transaction: Option<RefundTransaction>,
    /// The upstream idempotency key of the request that made it, so that a retry with the
    /// same caller key finds its own refund.
    #[serde(default)]
    pub requested_with: String,
}
