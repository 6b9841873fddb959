//! Refund: a SUCCEEDED payin, at most one refund request upstream per payin, ever (§3).

use super::{NotRefundable, Payments, PaymentsError, upstream_idempotency_key};
use crate::domain::{Language, ObservationSource, Payin, PayinStatus, Refund, RefundCommand};
use crate::provider::{ProviderError, ProviderFailure, RefundOrder};
use crate::store::attempt::Attempt;
use crate::store::{Claim, StoreError};

impl Payments {
    /// Refund: a SUCCEEDED payin, once and for good. The payin is marked refund-sent before
    /// the request leaves; only the key holding the mark may ever send again.
    pub async fn refund(
        &self,
        command: &RefundCommand,
        attempt: &Attempt,
        language: Language,
    ) -> Result<Refund, PaymentsError> {
        let reference = command.reference.as_str();
        let key = attempt.key();
        let payin = self.settled(reference, language).await?;
        let (amount, full) = command
            .resolve_amount(payin.amount)
            .map_err(PaymentsError::Invalid)?;
        let upstream_key = upstream_idempotency_key("refund", key);
        if let Some(done) = payin
            .refund
            .as_ref()
            .filter(|r| r.requested_with == upstream_key.to_string())
        {
            return Ok(done.clone());
        }
        let provider = self.provider_of(Some(&payin))?;
        if !provider.refunds_payins() {
            return Err(NotRefundable::NotOffered(provider.display_name()).into());
        }
        if payin.status != PayinStatus::Succeeded {
            return Err(NotRefundable::NotSucceeded(payin.status).into());
        }
        // Any refund known for this payin was sent with another key (even one Novasend
        // later reported as failed): at most one per payin, ever.
        if payin.refund.is_some() {
            return Err(NotRefundable::AlreadyRefunded.into());
        }
        let sent_before = match self.store.mark_refund_sent(reference, key).await? {
            Some(Claim::TakenByOther) => return Err(NotRefundable::AnotherRefundRequested.into()),
            Some(Claim::New) => attempt.resumed(),
            Some(Claim::AlreadyHeld) => true,
            // The cache entry expired since it was read: a retry reads it again.
            None => return Err(payin_left_the_cache()),
        };
        attempt.fence().await?;
        let order = RefundOrder {
            reason: command.reason.clone(),
            external_reference: command.external_reference.clone(),
            partial_amount: (!full).then_some(amount),
        };
        let failed = ProviderFailure::of(&**provider);
        let sent = provider
            .refund(reference, &order, upstream_key, language)
            .await;
        match sent {
            Ok(mut refund) => {
                refund.requested_with = upstream_key.to_string();
                if refund.external_reference.is_empty() {
                    refund
                        .external_reference
                        .clone_from(&command.external_reference);
                }
                if refund.reason.is_empty() {
                    refund.reason.clone_from(&command.reason);
                }
                match self
                    .update(reference, |p| p.refund = Some(refund.clone()))
                    .await
                {
                    // The provider refunded: never answer that the payin does not exist.
                    Err(PaymentsError::NotFound) => Err(payin_left_the_cache()),
                    saved => saved.map(|_| refund),
                }
            }
            // The mark stays whatever happened: only this key may try again, with the same
            // provider key, so the provider deduplicates it.
            Err(e) if e.may_have_acted() => {
                tracing::warn!(reference, error = %e, "refund outcome unknown; the payin stays marked");
                Err(PaymentsError::OutcomeUnknown)
            }
            Err(ProviderError::Conflict(_)) => Err(NotRefundable::AlreadyRefunded.into()),
            // A refusal of a repeat says nothing of what the first request did.
            Err(e) if sent_before && e.created_nothing() => {
                tracing::warn!(reference, error = %e, "refund retry refused; the first request's outcome stays unknown");
                Err(PaymentsError::OutcomeUnknown)
            }
            Err(e) => Err(failed(e).into()),
        }
    }

    /// The payin as it stands now: the cache when terminal, the provider otherwise.
    pub(super) async fn settled(
        &self,
        reference: &str,
        language: Language,
    ) -> Result<Payin, PaymentsError> {
        let cached = self.store.load_payin(reference).await?;
        if let Some(payin) = cached.as_ref().filter(|p| p.status.is_terminal()) {
            return Ok(payin.clone());
        }
        let fresh = self
            .refresh_from(reference, cached.as_ref(), language, ObservationSource::Api)
            .await?;
        fresh.or(cached).ok_or(PaymentsError::NotFound)
    }
}

fn payin_left_the_cache() -> PaymentsError {
    StoreError::Unavailable(
        "the payin left the cache during the refund; retry with the same key".into(),
    )
    .into()
}
