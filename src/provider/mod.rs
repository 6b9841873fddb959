//! Payment providers behind one trait. Each provider's JSON, URLs, headers and status words
//! live in its own module and nowhere else.

pub mod catalog;
mod http_client;
pub mod hub2;
mod incoming_webhook;
pub mod novasend;
mod registry;
pub mod setup;
pub mod webhook_secrets;

pub use catalog::{ProviderArgs, ProviderConfigs};
pub use incoming_webhook::{IncomingWebhook, WebhookTrigger};
pub use registry::Providers;
pub use setup::ProviderConfig;
pub use webhook_secrets::WebhookSecrets;

use crate::domain::{CreatePayinCommand, Language, ProviderPayin, Refund, Violations};
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
    /// The gateway never asks this provider for that (nothing was sent).
    #[error("the provider does not offer {0}")]
    Unsupported(&'static str),
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

/// Which payin to read: the merchant's reference, and the provider's own when it is known
/// (some providers, HUB2, can only be asked by their own).
#[derive(Debug, Clone, Copy)]
pub struct PayinLookup<'a> {
    pub reference: &'a str,
    pub provider_reference: Option<&'a str>,
}

/// A provider's failure, named after the provider for the caller's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{provider}: {error}")]
pub struct ProviderFailure {
    /// The provider's display name (`Novasend`).
    pub provider: &'static str,
    /// The settings holding the credentials it uses, for a refusal of them.
    pub credential_settings: &'static [&'static str],
    pub error: ProviderError,
}

impl ProviderFailure {
    /// `error`, as `provider` failed with it.
    pub fn of(provider: &dyn PaymentProvider) -> impl Fn(ProviderError) -> Self + '_ {
        move |error| ProviderFailure {
            provider: provider.display_name(),
            credential_settings: provider.credential_settings(),
            error,
        }
    }
}

#[async_trait]
pub trait PaymentProvider: Send + Sync + 'static {
    /// The stable name (`novasend`): stored with each payin, in webhook paths and routes.
    fn name(&self) -> &'static str;

    /// The name callers read in messages (`Novasend`).
    fn display_name(&self) -> &'static str;

    /// The settings holding this provider's credentials (`NOVASEND_API_KEY` …), named when
    /// the provider refuses them.
    fn credential_settings(&self) -> &'static [&'static str];

    /// How this provider's webhooks are signed and what they name.
    fn webhooks(&self) -> &dyn IncomingWebhook;

    /// Opens a payin session. `idempotency_key` deduplicates retries upstream.
    async fn create_payin(
        &self,
        command: &CreatePayinCommand,
        idempotency_key: Uuid,
        language: Language,
    ) -> Result<ProviderPayin, ProviderError>;

    /// Reads a payin; `Ok(None)` when the provider does not know it (or cannot be asked
    /// without its own reference).
    async fn get_payin(
        &self,
        lookup: PayinLookup<'_>,
        language: Language,
    ) -> Result<Option<ProviderPayin>, ProviderError>;

    /// What this provider finds missing or wrong in a create (HUB2 needs an operator),
    /// reported as field violations before anything is kept or sent.
    fn check(&self, command: &CreatePayinCommand) -> Violations {
        let _ = command;
        Violations::default()
    }

    /// Whether a create is two steps: `create_payin` opens the payin (HUB2's intent), and
    /// `pay` asks the payer (HUB2's payment attempt), the step that may move money.
    fn pays_separately(&self) -> bool {
        false
    }

    /// The payment step of a two-step create, for the payin `create_payin` opened: sent only
    /// when the provider shows no payment under way for it (never a second one), and
    /// reconciled by a read when its outcome is unknown.
    async fn pay(
        &self,
        command: &CreatePayinCommand,
        provider_reference: &str,
        language: Language,
    ) -> Result<ProviderPayin, ProviderError> {
        let _ = (command, provider_reference, language);
        Err(ProviderError::Unsupported("a payment step"))
    }

    /// Submits the payer's one-time code for a payin whose next action asks for one.
    async fn confirm(
        &self,
        provider_reference: &str,
        code: &str,
        language: Language,
    ) -> Result<ProviderPayin, ProviderError> {
        let _ = (provider_reference, code, language);
        Err(ProviderError::Unsupported("one-time codes"))
    }

    /// Whether this provider's payins can be refunded through the gateway.
    fn refunds_payins(&self) -> bool {
        true
    }

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

/// Hides phone numbers in text that came from outside: runs of 8 or more digits, with or
/// without `+`, also when written in groups (`+225 07 00 00 00 42`, `0700-000-042`,
/// `(07) 00.00.00.42`). Every digit but the last four, and a leading `+`, becomes `*` (as
/// `mask_phone` does); separators stay.
pub fn redact_phone_numbers(text: &str) -> String {
    const SEPARATORS: &[char] = &[' ', '-', '.', '(', ')'];
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let starts_run = chars[i].is_ascii_digit()
            || ((chars[i] == '+' || chars[i] == '(')
                && chars.get(i + 1).is_some_and(char::is_ascii_digit));
        if !starts_run {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        // The run: digits, and at most two separators in a row between them (`) `).
        let separated_digit_follows = |at: usize| {
            chars[at..]
                .iter()
                .take(3)
                .take_while(|c| SEPARATORS.contains(c) || c.is_ascii_digit())
                .any(char::is_ascii_digit)
        };
        let mut end = i + 1;
        let mut last_digit = if chars[i].is_ascii_digit() { i } else { i + 1 };
        while end < chars.len() {
            let c = chars[end];
            if c.is_ascii_digit() {
                last_digit = end;
            } else if !(SEPARATORS.contains(&c) && separated_digit_follows(end)) {
                break;
            }
            end += 1;
        }
        let run = &chars[i..=last_digit];
        let digits = run.iter().filter(|c| c.is_ascii_digit()).count();
        let mut seen = 0;
        for &c in run {
            if c.is_ascii_digit() && digits >= 8 {
                seen += 1;
                out.push(if digits - seen < 4 { c } else { '*' });
            } else if c == '+' && digits >= 8 {
                out.push('*');
            } else {
                out.push(c);
            }
        }
        i = last_digit + 1;
    }
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

    #[test]
    fn redacts_phone_numbers_written_in_groups() {
        assert_eq!(
            redact_phone_numbers("call +225 07 00 00 00 42 now"),
            "call **** ** ** ** 00 42 now"
        );
        assert_eq!(redact_phone_numbers("0700-000-042."), "****-**0-042.");
        assert_eq!(redact_phone_numbers("(07) 00.00.00.42"), "(**) **.**.00.42");
        assert_eq!(
            redact_phone_numbers("300 200 and 12 34"),
            "300 200 and 12 34"
        );
        for text in ["+225 07 00 00 00 42", "07-00-00-00-42", "0700000042"] {
            let redacted = redact_phone_numbers(text);
            let shown: String = redacted.chars().filter(char::is_ascii_digit).collect();
            assert_eq!(shown.len(), 4, "{redacted}");
        }
    }
}
