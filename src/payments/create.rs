//! CreatePayin: claim the reference, reconcile whatever an earlier attempt may have done, and
//! post at most once per attempt; an outcome that may have happened upstream is reconciled.
//! A two-step provider (HUB2) opens the payin, which is kept, then gets its payment step.

use super::{Payments, PaymentsError, observe, upstream_idempotency_key};
use crate::domain::{
    CreatePayinCommand, Language, ObservationSource, Payin, PayinStatus, ProviderPayin,
};
use crate::provider::{PayinLookup, PaymentProvider, ProviderError, ProviderFailure};
use crate::store::attempt::Attempt;
use crate::store::{Claim, StoreError};
use std::sync::Arc;

impl Payments {
    /// Creates a payin at `routed` (the router's choice), or finds the one an earlier
    /// attempt with the same key created. Whatever may have happened upstream is reconciled,
    /// never posted blindly again, and never at another provider.
    pub async fn create(
        &self,
        command: &CreatePayinCommand,
        routed: &Arc<dyn PaymentProvider>,
        attempt: &Attempt,
        language: Language,
    ) -> Result<Payin, PaymentsError> {
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
        let provider = &self
            .provider_of_create(routed, attempt, posted_before, command)
            .await?;
        let found = match posted_before {
            true => self.reconcile_create(provider, command, language).await?,
            false => None,
        };
        let opened = match found {
            Some(found) => found,
            None => {
                self.open(provider, command, attempt, posted_before, language)
                    .await?
            }
        };
        // A two-step provider's payin waits for its payment step until it has one.
        if provider.pays_separately() && opened.status == PayinStatus::Pending {
            return self
                .pay(provider, command, attempt, &opened, language)
                .await;
        }
        Ok(opened)
    }

    /// Gives the reference back after a definitive refusal, only while this attempt still
    /// holds its record: an attempt that lost it (stalled, then taken over by a retry that
    /// may have created the payin) must not free a reference someone's payin now uses.
    async fn free_reference(
        &self,
        reference: &str,
        attempt: &Attempt,
    ) -> Result<(), PaymentsError> {
        attempt.fence().await?;
        self.store
            .unclaim_reference(reference, attempt.key())
            .await?;
        Ok(())
    }

    /// The provider a create goes to, so that a retry never switches provider (routes may
    /// change between attempts, and the first provider may hold a payin already):
    /// - a record taken over (an earlier attempt with this key ran): the provider it kept,
    ///   else (a record older than providers) the cached payin's, else the default;
    /// - a new record for a reference this key already held (its record expired): the
    ///   cached payin's provider;
    /// - otherwise the router's choice.
    async fn provider_of_create(
        &self,
        routed: &Arc<dyn PaymentProvider>,
        attempt: &Attempt,
        posted_before: bool,
        command: &CreatePayinCommand,
    ) -> Result<Arc<dyn PaymentProvider>, PaymentsError> {
        let cached_provider = || async {
            let cached = self.store.load_payin(command.reference.as_str()).await?;
            Ok::<_, PaymentsError>(cached.map(|p| p.provider))
        };
        let kept = match (attempt.resumed(), attempt.provider()) {
            (true, Some(name)) => Some(name.to_owned()),
            (true, None) => Some(
                cached_provider()
                    .await?
                    .unwrap_or_else(|| self.providers.default_provider().name().into()),
            ),
            (false, _) if posted_before => cached_provider().await?,
            (false, _) => None,
        };
        match kept {
            Some(name) if name != routed.name() => self
                .providers
                .get(&name)
                .cloned()
                .ok_or(PaymentsError::ProviderNotEnabled(name)),
            _ => Ok(routed.clone()),
        }
    }

    /// The first (for Novasend, the only) step: posts the payin, at most once per attempt.
    async fn open(
        &self,
        provider: &Arc<dyn PaymentProvider>,
        command: &CreatePayinCommand,
        attempt: &Attempt,
        posted_before: bool,
        language: Language,
    ) -> Result<Payin, PaymentsError> {
        let (reference, key) = (command.reference.as_str(), attempt.key());
        let failed = ProviderFailure::of(&**provider);
        attempt.fence().await?;
        let upstream_key = upstream_idempotency_key("create", key);
        match provider.create_payin(command, upstream_key, language).await {
            // A one-step provider's answer is the create's: its record may finish with it.
            Ok(created) => {
                let answering = (!provider.pays_separately()).then_some(attempt);
                self.keep_created(command, created, !posted_before, answering)
                    .await
            }
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
                self.free_reference(reference, attempt).await?;
                Err(failed(e).into())
            }
            Err(e) => Err(failed(e).into()),
        }
    }

    /// The payment step of a two-step create (HUB2's attempt): the provider sends it only
    /// when none is under way. An unknown outcome is not retried here: the caller's retry
    /// with the same key reconciles first.
    async fn pay(
        &self,
        provider: &Arc<dyn PaymentProvider>,
        command: &CreatePayinCommand,
        attempt: &Attempt,
        opened: &Payin,
        language: Language,
    ) -> Result<Payin, PaymentsError> {
        let reference = command.reference.as_str();
        attempt.fence().await?;
        match provider
            .pay(command, &opened.provider_reference, language)
            .await
        {
            Ok(paying) => self.keep_created(command, paying, false, None).await,
            // The provider may still be working on it after our timeout, and it has no
            // idempotency key: the record stays held until that surely ended, so that no
            // retry sends an attempt the provider would list a moment later.
            Err(e) if e.may_have_acted() => {
                tracing::warn!(reference, error = %e, "payment step outcome unknown");
                Err(PaymentsError::OutcomeSettling(
                    self.settings.provider_call_bound(),
                ))
            }
            // Refused: no payment exists, and what was opened charges no one, so the
            // merchant may fix the cause and retry the reference with a new key.
            // HUB2 says an attempt exists that it does not list yet: one is under way.
            Err(ProviderError::Conflict(message)) => {
                tracing::warn!(reference, message, "payment step refused as a duplicate");
                Err(PaymentsError::OutcomeSettling(
                    self.settings.provider_call_bound(),
                ))
            }
            // Refused: no payment exists, and the opened payin charges no one; it is dropped
            // and the reference freed, so the merchant may fix the cause and retry with a
            // new key, on a clean slate.
            Err(e) if e.created_nothing() => {
                self.store.drop_payin(opened).await?;
                self.free_reference(reference, attempt).await?;
                Err(ProviderFailure::of(&**provider)(e).into())
            }
            Err(e) => Err(ProviderFailure::of(&**provider)(e).into()),
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
        // A provider asked by its own reference (HUB2) is found through what was kept of
        // the payin it opened.
        let cached = self.store.load_payin(reference).await?;
        let lookup = PayinLookup {
            reference,
            provider_reference: cached
                .as_ref()
                .filter(|p| p.provider == provider.name() && !p.provider_reference.is_empty())
                .map(|p| p.provider_reference.as_str()),
        };
        match provider.get_payin(lookup, language).await {
            Ok(Some(found)) if answers_the_request(command, &found) => self
                .keep_created(command, found, false, None)
                .await
                .map(Some),
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
    /// `answering`: the attempt whose answer this payin is (its record may finish with it).
    async fn keep_created(
        &self,
        command: &CreatePayinCommand,
        observed: ProviderPayin,
        probably_new: bool,
        answering: Option<&Attempt>,
    ) -> Result<Payin, PaymentsError> {
        let reference = command.reference.as_str();
        self.modify_guessing(reference, probably_new, answering, |cached, now| {
            // A cached payin of another provider is another upstream object: it is replaced,
            // never merged into.
            let cached = cached.filter(|c| same_upstream_payin(c, &observed));
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

/// Whether `observed` may be about the payin `cached` describes: the same provider. (Not the
/// same provider reference: Novasend names one payin `tr_…` or `mtr_…` by answer.)
fn same_upstream_payin(cached: &Payin, observed: &ProviderPayin) -> bool {
    cached.provider == observed.provider
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
