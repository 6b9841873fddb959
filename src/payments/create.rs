//! CreatePayin: claim the reference, reconcile whatever an earlier attempt may have done, and
//! post at most once per attempt; an outcome that may have happened upstream is reconciled.

use super::{Payments, PaymentsError, observe, upstream_idempotency_key};
use crate::domain::{CreatePayinCommand, Language, ObservationSource, Payin, ProviderPayin};
use crate::provider::ProviderError;
use crate::store::Claim;
use crate::store::attempt::Attempt;

impl Payments {
    /// Creates a payin upstream, or finds the one an earlier attempt with the same key
    /// created. Whatever may have happened upstream is reconciled, never posted blindly again.
    pub async fn create(
        &self,
        command: &CreatePayinCommand,
        attempt: &Attempt,
        language: Language,
    ) -> Result<Payin, PaymentsError> {
        let reference = command.reference.as_str();
        let key = attempt.key();
        let claim = self
            .store
            .claim_reference(reference, key, self.settings.payin_ttl)
            .await?;
        if !claim.is_held() {
            return Err(PaymentsError::ReferenceTaken);
        }
        // Whatever an earlier attempt with this key did (its record may even have expired
        // since), the provider knows.
        if (attempt.resumed() || claim == Claim::AlreadyHeld)
            && let Some(found) = self.reconcile_create(command, language).await?
        {
            return Ok(found);
        }
        attempt.fence().await?;
        let upstream_key = upstream_idempotency_key("create", key);
        match self
            .provider
            .create_payin(command, upstream_key, language)
            .await
        {
            Ok(created) => self.adopt_created(command, created).await,
            Err(e) if e.may_have_acted() => {
                tracing::warn!(reference, error = %e, "create outcome unknown; reconciling");
                self.reconcile_create(command, language)
                    .await?
                    .ok_or(PaymentsError::OutcomeUnknown)
            }
            // Our own earlier attempt (same upstream key), or someone else's payin.
            Err(ProviderError::Conflict(message)) => self
                .reconcile_create(command, language)
                .await?
                .ok_or(ProviderError::Conflict(message).into()),
            Err(e) if e.created_nothing() => {
                self.store.unclaim_reference(reference, key).await?;
                Err(e.into())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Asks the provider whether the payin of `command` exists. A failed read says nothing
    /// either way: the outcome stays unknown (and is never recorded as final).
    async fn reconcile_create(
        &self,
        command: &CreatePayinCommand,
        language: Language,
    ) -> Result<Option<Payin>, PaymentsError> {
        let reference = command.reference.as_str();
        match self.provider.get_payin(reference, language).await {
            Ok(Some(found)) => self.adopt_created(command, found).await.map(Some),
            Ok(None) => Ok(None),
            Err(e) => {
                tracing::warn!(reference, error = %e, "reconciliation failed");
                Err(PaymentsError::OutcomeUnknown)
            }
        }
    }

    /// Keeps a payin the provider returned for our create. One found by reconciliation that
    /// does not match the request belongs to someone else. What only the request knows
    /// (country, account) is filled in even when a refresh cached the payin first.
    async fn adopt_created(
        &self,
        command: &CreatePayinCommand,
        observed: ProviderPayin,
    ) -> Result<Payin, PaymentsError> {
        let same_request = observed.amount == 0 || observed.amount == command.amount;
        if !same_request {
            return Err(PaymentsError::ReferenceTaken);
        }
        let reference = command.reference.as_str();
        self.modify(reference, |cached, now| {
            let (mut payin, announce) = observe(
                reference,
                cached,
                observed.clone(),
                ObservationSource::Api,
                now,
            );
            let missing = payin.country.is_empty() || payin.account_id.is_empty();
            if missing {
                payin.country.clone_from(&command.country);
                payin.account_id.clone_from(&command.account_id);
            }
            Ok((payin, announce))
        })
        .await
    }
}
