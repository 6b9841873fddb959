//! What the sandbox processed: every write that got past the injected faults, with the status
//! it answered. Tests count the provider-side effects from it (at most one payin per
//! reference, at most one refund per payin), so a write cut short by a `status`, `drop` or
//! `malformed` fault is not in it, while a `drop_after` or `malformed_after` one is.

use serde::{Deserialize, Serialize};

/// Enough for any test run; beyond it the journal stops growing and says so.
const CAPACITY: usize = 200_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// Novasend's `create` or `refund`; HUB2's `hub2_intent`, `hub2_payment` (the attempt:
    /// the money step) or `hub2_authentication`.
    pub operation: String,
    /// The merchant reference of a create or an intent, or the path reference of a refund
    /// (the intent id of a HUB2 attempt or authentication).
    pub reference: String,
    /// For a refund, an attempt or an authentication: the merchant reference of the payin
    /// the path named, when it exists.
    #[serde(default)]
    pub payin_reference: Option<String>,
    /// The `X-Idempotency-Key` header as sent (empty when missing, and for HUB2, which has
    /// none).
    pub idempotency_key: String,
    /// The status the sandbox answered (201, 409, 422 …), before any `*_after` fault.
    pub http_status: u16,
    /// A create's or an intent's amount; a refund's refunded amount (the requested one when
    /// refused); the intent's amount for an attempt.
    #[serde(default)]
    pub amount: Option<i64>,
    /// For a refund: the amount of the payin it refunds (of the intent, for HUB2).
    #[serde(default)]
    pub payin_amount: Option<i64>,
}

/// The journal's answer to `GET /_sandbox/journal`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct JournalPage {
    pub entries: Vec<JournalEntry>,
    /// Writes processed after the journal was full (none in any sensible test).
    pub dropped: u64,
}

#[derive(Debug, Default)]
pub struct Journal {
    page: JournalPage,
}

impl Journal {
    pub fn record(&mut self, entry: JournalEntry) {
        if self.page.entries.len() < CAPACITY {
            self.page.entries.push(entry);
        } else {
            self.page.dropped += 1;
        }
    }

    pub fn page(&self) -> JournalPage {
        self.page.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_in_order_and_stops_at_capacity() {
        let mut journal = Journal::default();
        let entry = |n: usize| JournalEntry {
            operation: "create".into(),
            reference: format!("order-{n}"),
            payin_reference: None,
            idempotency_key: String::new(),
            http_status: 201,
            amount: Some(300),
            payin_amount: None,
        };
        for n in 0..CAPACITY + 2 {
            journal.record(entry(n));
        }
        let page = journal.page();
        assert_eq!(page.entries.len(), CAPACITY);
        assert_eq!(page.entries[1].reference, "order-1");
        assert_eq!(page.dropped, 2);
    }
}
