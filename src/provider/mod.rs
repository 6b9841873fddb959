//! Payment providers behind one trait. Each provider's JSON, URLs, headers and status words
//! live in its own module and nowhere else.

pub mod novasend;
pub mod sandbox;

use crate::domain::{CreatePayinCommand, Language, ProviderPayin, Refund};
use async_trait::async_trait;
use uuid::Uuid;

/// A refund as this service asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundOrder {
    pub reason: String,
    pub external_reference: String,
    /// `None` for a full refund.
    pub partial_amount: Option<i64>,
}

/// How a provider call went wrong. Messages never carry credentials and mask phone numbers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The request never left: nothing can have happened upstream.
    #[error("provider unreachable: {0}")]
    NotSent(String),
    /// The request left but no verdict came back (timeout, dropped connection, 5xx): the
    /// operation may or may not have happened upstream.
    #[error("provider outcome unknown: {0}")]
    OutcomeUnknown(String),
    #[error("provider rate limit: {0}")]
    RateLimited(String),
    /// 409: a duplicate reference or key upstream.
    #[error("provider conflict: {0}")]
    Conflict(String),
    /// 400/422: the provider refused the request's content.
    #[error("provider rejected the request: {0}")]
    Rejected(String),
    #[error("provider has no such payin: {0}")]
    NotFound(String),
    /// 401/403: our credentials are wrong or lack rights.
    #[error("provider refused our credentials (HTTP {0})")]
    Credentials(u16),
    #[error("malformed provider response: {0}")]
    Malformed(String),
    #[error("unexpected provider answer (HTTP {status}): {message}")]
    Unexpected { status: u16, message: String },
}

impl ProviderError {
    /// The write may have been carried out upstream although no verdict came back: a
    /// timeout, a dropped connection, a 5xx, a 2xx we could not read, an answer we do not
    /// understand. Such an outcome is reconciled, never recorded as final (contract §3).
    pub fn may_have_acted(&self) -> bool {
        matches!(
            self,
            Self::OutcomeUnknown(_) | Self::Malformed(_) | Self::Unexpected { .. }
        )
    }

    /// A definitive refusal that created nothing upstream (400, 401, 403, 404, 422).
    pub fn created_nothing(&self) -> bool {
        matches!(
            self,
            Self::Rejected(_) | Self::Credentials(_) | Self::NotFound(_)
        )
    }
}

#[async_trait]
pub trait PaymentProvider: Send + Sync + 'static {
    /// Opens a payin session. `idempotency_key` deduplicates retries upstream.
    async fn create_payin(
        &self,
        command: &CreatePayinCommand,
        idempotency_key: Uuid,
        language: Language,
    ) -> Result<ProviderPayin, ProviderError>;

    /// Reads a payin by reference; `Ok(None)` when the provider does not know it.
    async fn get_payin(
        &self,
        reference: &str,
        language: Language,
    ) -> Result<Option<ProviderPayin>, ProviderError>;

    async fn refund(
        &self,
        reference: &str,
        order: &RefundOrder,
        idempotency_key: Uuid,
        language: Language,
    ) -> Result<Refund, ProviderError>;

    /// Whether the last call got an answer from the provider; `None` before any call.
    fn reachable(&self) -> Option<bool> {
        None
    }
}

/// Hides phone numbers (runs of 8 or more digits, with or without `+`) in text that came from
/// outside, keeping their last four digits.
pub fn redact_phone_numbers(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        let digits = run.trim_start_matches('+').len();
        if digits >= 8 {
            out.push_str(&crate::domain::mask_phone(run));
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_digit() || (c == '+' && run.is_empty()) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::redact_phone_numbers;

    #[test]
    fn redacts_numbers_that_look_like_phones() {
        assert_eq!(
            redact_phone_numbers("msisdn +2250700000042 is invalid"),
            "msisdn **********0042 is invalid"
        );
        assert_eq!(redact_phone_numbers("0700000042,"), "******0042,");
        assert_eq!(redact_phone_numbers("amount 300 > 200"), "amount 300 > 200");
        assert_eq!(redact_phone_numbers("a+b 1234567"), "a+b 1234567");
    }
}
