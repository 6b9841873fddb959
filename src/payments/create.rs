//! CreatePayin: claim the reference, reconcile whatever an earlier attempt may have done, and
//! post at most once per attempt; an outcome that may have happened upstream is reconciled.

use super::{Payments, PaymentsError, observe, upstream_idempotency_key};
use crate::domain::{CreatePayinCommand, Language, ObservationSource, Payin, ProviderPayin};
use crate::provider::{PaymentProvider, ProviderError, ProviderFailure};
use crate::store::attempt::Attempt;
use crate::store::{Claim, StoreError};
use std::sync::Arc;

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
        // The record's `begin` claimed the reference for this key (contract §3).
        // Without it nothing may be posted: fail closed.
        let Some(claim) = attempt.reference_claim() else {
            return Err(StoreError::Unavailable("the reference was not claimed".into()).into());
        };
        if !claim.is_held() {
            return Err(PaymentsError::ReferenceTaken);
        }
        // An earlier attempt with this key may have posted (its record may even have expired
        // since): whatever it did, the provider knows.
        let posted_before = attempt.resumed() || claim == Claim::AlreadyHeld;
        let provider = self.providers.default_provider();
        let failed = ProviderFailure::of(&**provider);
        if posted_before
            && let Some(found) = self.reconcile_create(provider, command, language).await?
        {
            return Ok(found);
        }
        attempt.fence().await?;
        let upstream_key = upstream_idempotency_key("create", key);
        match provider.create_payin(command, upstream_key, language).await {
            Ok(created) => self.keep_created(command, created, !posted_before).await,
            Err(e) if e.may_have_acted() => {
                tracing::warn!(reference, error = %e, "create outcome unknown; reconciling");
                self.reconcile_create(provider, command, language)
                    .await?
                    .ok_or(PaymentsError::OutcomeUnknown)
            }
            // Our own earlier attempt (same upstream key), or someone else's payin.
            Err(ProviderError::Conflict(message)) => {
                match self.reconcile_create(provider, command, language).await? {
                    Some(found) => Ok(found),
                    // The provider refuses a key we may have sent before, yet shows no
                    // payin: nothing says what our first POST did.
                    None if posted_before => Err(PaymentsError::OutcomeUnknown),
                    None => Err(failed(ProviderError::Conflict(message)).into()),
                }
            }
            Err(e) if e.created_nothing() => {
                self.store.unclaim_reference(reference, key).await?;
                Err(failed(e).into())
            }
            Err(e) => Err(failed(e).into()),
        }
    }

    /// Asks the provider whether the payin of `command` exists. A failed read says nothing
    /// either way: the outcome stays unknown (and is never recorded as final).
    async fn reconcile_create(
        &self,
        provider: &Arc<dyn PaymentProvider>,
        command: &CreatePayinCommand,
        language: Language,
    ) -> Result<Option<Payin>, PaymentsError> {
        let reference = command.reference.as_str();
        match provider.get_payin(reference, language).await {
            Ok(Some(found)) if answers_the_request(command, &found) => {
                self.keep_created(command, found, false).await.map(Some)
            }
            Ok(Some(_)) => Err(PaymentsError::ReferenceTaken),
            Ok(None) => Ok(None),
            Err(e) => {
                tracing::warn!(reference, error = %e, "reconciliation failed");
                Err(PaymentsError::OutcomeUnknown)
            }
        }
    }

    /// Keeps the payin created for `command`. What only the request knows (country, account,
    /// a name the answer lacks) is filled in even when a refresh cached the payin first.
    async fn keep_created(
        &self,
        command: &CreatePayinCommand,
        observed: ProviderPayin,
        probably_new: bool,
    ) -> Result<Payin, PaymentsError> {
        let reference = command.reference.as_str();
        self.modify_guessing(reference, probably_new, |cached, now| {
            let first = cached.is_none();
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
            // Some answers name no customer (Novasend's 2025 create answer): the caller's
            // name stands (contract §9).
            if payin.customer_name.is_empty() {
                payin.customer_name.clone_from(&command.customer_name);
            }
            // A payin this create just made is new to everyone: no stream can be waiting for
            // its first state (a stream opens only on a payin that exists), so it is not
            // announced. Any other first state is (a stream may have outlived a lost cache).
            Ok((payin, announce && !(probably_new && first)))
        })
        .await
    }
}

/// Whether a payin the provider holds under the command's reference (found by
/// reconciliation, not answered to our POST) is the one the command asks for: the same
/// amount, currency and payer, each compared whenever the provider says it, and at least the
/// amount or the payer said. A payin under the same reference that differs is someone else's.
fn answers_the_request(command: &CreatePayinCommand, observed: &ProviderPayin) -> bool {
    let digits = |phone: &str| {
        phone
            .chars()
            .filter(char::is_ascii_digit)
            .collect::<String>()
    };
    let observed_phone = digits(observed.customer_phone.expose());
    (observed.amount != 0 || !observed_phone.is_empty())
        && (observed.amount == 0 || observed.amount == command.amount)
        && (observed.currency.is_empty() || observed.currency == command.currency)
        && (observed_phone.is_empty() || observed_phone == digits(command.msisdn.expose()))
}
