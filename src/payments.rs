//! The payment operations: what CreatePayin, GetPayin and Refund do, independent of gRPC.
//! Idempotency records are opened and closed by the API layer around these calls; here we
//! decide what to ask Novasend and what to keep.

use crate::domain::{
    Applied, CreatePayinCommand, Language, ObservationSource, Payin, PayinStatus, ProviderPayin,
    Refund, RefundCommand, Violations,
};
use crate::provider::{PaymentProvider, ProviderError, RefundOrder};
use crate::store::{Claim, SaveOptions, Store, StoreError};
use crate::telemetry::metrics::CONTRADICTIONS;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// Tunables of the payment operations.
#[derive(Debug, Clone)]
pub struct PaymentsSettings {
    /// A cached non-terminal payin older than this is refreshed before it is returned.
    pub poll_interval: Duration,
    pub idempotency_ttl: Duration,
    /// How long a duplicate waits for the first call before ABORTED.
    pub idempotency_wait: Duration,
    pub upstream_timeout: Duration,
    /// How long payins stay in the cache.
    pub payin_ttl: Duration,
    /// When the reconciler first reads a new non-terminal payin nobody else refreshed.
    pub reconcile_after: Duration,
}

impl PaymentsSettings {
    /// How long a running attempt keeps its idempotency record or refund lock: long enough
    /// for a create and its reconciliation, each with its own upstream timeout and retries.
    pub fn lease(&self) -> Duration {
        self.upstream_timeout * 3 + Duration::from_secs(10)
    }
}

/// Why a refund cannot be made (FAILED_PRECONDITION).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotRefundable {
    NotSucceeded(PayinStatus),
    AlreadyRefunded,
    /// Another key's refund of this payin has an unknown outcome; only that key may retry.
    AnotherRefundUnresolved,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentsError {
    #[error("invalid request")]
    Invalid(Violations),
    #[error("payin not found")]
    NotFound,
    #[error("refund not possible: {0:?}")]
    NotRefundable(NotRefundable),
    #[error("reference already used by another payin")]
    ReferenceTaken,
    /// The create may or may not have reached Novasend, and Novasend does not know the payin yet.
    #[error("outcome unknown")]
    OutcomeUnknown,
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The key Novasend sees: derived from the operation and the caller's key, so a retry is
/// deduplicated upstream too and two operations never share one.
pub fn upstream_idempotency_key(operation: &str, caller_key: &str) -> Uuid {
    static NAMESPACE: std::sync::LazyLock<Uuid> = std::sync::LazyLock::new(|| {
        Uuid::new_v5(
            &Uuid::NAMESPACE_URL,
            b"urn:payments-gateway:novasend-idempotency",
        )
    });
    Uuid::new_v5(&NAMESPACE, format!("{operation}:{caller_key}").as_bytes())
}

/// Bounded optimistic-concurrency retries when two writers update one payin at once.
const SAVE_ATTEMPTS: usize = 8;
const REFUND_LOCK_POLL: Duration = Duration::from_millis(50);

#[derive(Clone)]
pub struct Payments {
    store: Arc<dyn Store>,
    provider: Arc<dyn PaymentProvider>,
    settings: PaymentsSettings,
}

impl Payments {
    pub fn new(
        store: Arc<dyn Store>,
        provider: Arc<dyn PaymentProvider>,
        settings: PaymentsSettings,
    ) -> Self {
        Self {
            store,
            provider,
            settings,
        }
    }

    pub fn provider(&self) -> &Arc<dyn PaymentProvider> {
        &self.provider
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn settings(&self) -> &PaymentsSettings {
        &self.settings
    }

    /// Creates a payin at Novasend, or finds the one an earlier attempt with the same key
    /// created. `resumed`: an earlier attempt ended without a known outcome.
    pub async fn create(
        &self,
        command: &CreatePayinCommand,
        key: &str,
        resumed: bool,
        language: Language,
    ) -> Result<Payin, PaymentsError> {
        let reference = command.reference.as_str();
        let claim = self
            .store
            .claim_reference(reference, key, self.settings.payin_ttl)
            .await?;
        if !claim.is_held() {
            return Err(PaymentsError::ReferenceTaken);
        }
        // Never a blind second POST: whatever an earlier attempt with this key did (its
        // record may even have expired since), Novasend knows.
        let reconcile_first = resumed || claim == Claim::AlreadyHeld;
        if reconcile_first && let Some(found) = self.provider.get_payin(reference, language).await?
        {
            return self.adopt_created(command, found).await;
        }
        let upstream_key = upstream_idempotency_key("create", key);
        match self
            .provider
            .create_payin(command, upstream_key, language)
            .await
        {
            Ok(created) => self.adopt_created(command, created).await,
            Err(ProviderError::OutcomeUnknown(reason)) => {
                tracing::warn!(reference, reason, "create outcome unknown; reconciling");
                match self.provider.get_payin(reference, language).await {
                    Ok(Some(found)) => self.adopt_created(command, found).await,
                    Ok(None) => Err(PaymentsError::OutcomeUnknown),
                    Err(e) => {
                        tracing::warn!(reference, error = %e, "reconciliation failed");
                        Err(PaymentsError::OutcomeUnknown)
                    }
                }
            }
            Err(rejected @ ProviderError::Rejected(_)) => {
                // Novasend created nothing: the reference is free again.
                self.store.unclaim_reference(reference, key).await?;
                Err(rejected.into())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Keeps a payin Novasend returned for our create. One found by reconciliation that does
    /// not match the request belongs to someone else.
    async fn adopt_created(
        &self,
        command: &CreatePayinCommand,
        observed: ProviderPayin,
    ) -> Result<Payin, PaymentsError> {
        let same_request = observed.amount == 0 || observed.amount == command.amount;
        if !same_request {
            return Err(PaymentsError::ReferenceTaken);
        }
        self.upsert(
            command.reference.as_str(),
            observed,
            ObservationSource::Api,
            |observed, now| {
                Payin::first_seen(
                    command.reference.as_str(),
                    &command.country,
                    &command.account_id,
                    observed,
                    now,
                )
            },
        )
        .await
    }

    /// Applies an observation to the cached payin, or creates the cache entry with
    /// `first_seen` when there is none. A change callers can see is announced to watchers.
    pub async fn upsert(
        &self,
        reference: &str,
        observed: ProviderPayin,
        source: ObservationSource,
        first_seen: impl Fn(ProviderPayin, DateTime<Utc>) -> Payin,
    ) -> Result<Payin, PaymentsError> {
        self.modify(reference, |cached, now| {
            let Some(mut payin) = cached else {
                let mut payin = first_seen(observed.clone(), now);
                payin.last_source = source;
                return Ok((payin, true));
            };
            let applied = payin.apply(observed.clone(), now);
            match applied {
                Applied::Contradicted { observed } => {
                    metrics::counter!(CONTRADICTIONS).increment(1);
                    tracing::warn!(
                    reference,
                    current = ?payin.status,
                    ?observed,
                    ?source,
                    "provider contradicts a known status; not applied"
                    )
                }
                Applied::Changed { previous } => {
                    payin.last_source = source;
                    tracing::info!(reference, ?previous, status = ?payin.status, ?source, "payin changed");
                }
                Applied::Unchanged => {}
            }
            Ok((payin, matches!(applied, Applied::Changed { .. })))
        })
        .await
    }

    /// Writes a change to the cached payin that streams do not report (a refund).
    async fn update(
        &self,
        reference: &str,
        change: impl Fn(&mut Payin),
    ) -> Result<Payin, PaymentsError> {
        self.modify(reference, |cached, _| {
            let mut payin = cached.ok_or(PaymentsError::NotFound)?;
            change(&mut payin);
            Ok((payin, false))
        })
        .await
    }

    /// The one read-modify-write of a cached payin: compare-and-set in the store, retried a
    /// bounded number of times when another writer (here or on another replica) was first.
    /// `change` returns the new payin and whether watchers must hear of it.
    async fn modify(
        &self,
        reference: &str,
        change: impl Fn(Option<Payin>, DateTime<Utc>) -> Result<(Payin, bool), PaymentsError>,
    ) -> Result<Payin, PaymentsError> {
        for _ in 0..SAVE_ATTEMPTS {
            let cached = self.store.load_payin(reference).await?;
            let expected = cached.as_ref().map_or(0, |p| p.version);
            let (mut payin, announce) = change(cached, Utc::now())?;
            payin.version = expected + 1;
            if self
                .store
                .save_payin(
                    &payin,
                    expected,
                    SaveOptions {
                        announce,
                        ttl: self.settings.payin_ttl,
                        reconcile_after: self.settings.reconcile_after,
                    },
                )
                .await?
            {
                return Ok(payin);
            }
        }
        Err(
            StoreError::Unavailable("the payin kept changing under concurrent writers".into())
                .into(),
        )
    }

    /// Reads Novasend now and applies what it says. `Ok(None)`: Novasend does not know it.
    pub async fn refresh(
        &self,
        reference: &str,
        language: Language,
        source: ObservationSource,
    ) -> Result<Option<Payin>, PaymentsError> {
        let Some(observed) = self.provider.get_payin(reference, language).await? else {
            return Ok(None);
        };
        let payin = self
            .upsert(reference, observed, source, |observed, now| {
                Payin::first_seen(reference, "", "", observed, now)
            })
            .await?;
        Ok(Some(payin))
    }

    /// GetPayin: the cache while fresh, Novasend otherwise.
    pub async fn get(
        &self,
        reference: &str,
        force_refresh: bool,
        language: Language,
    ) -> Result<Payin, PaymentsError> {
        let cached = self.store.load_payin(reference).await?;
        let Some(cached) = cached else {
            // Not cached (expired, or created before this store): Novasend may still know it.
            return self
                .refresh(reference, language, ObservationSource::Api)
                .await?
                .ok_or(PaymentsError::NotFound);
        };
        let stale = !cached.status.is_terminal() && self.is_stale(&cached);
        if !force_refresh && !stale {
            return Ok(cached);
        }
        match self
            .refresh(reference, language, ObservationSource::Api)
            .await
        {
            Ok(Some(fresh)) => Ok(fresh),
            Ok(None) => Ok(cached),
            // An implicit refresh that fails still leaves a true (if older) answer to give.
            Err(PaymentsError::Provider(e)) if !force_refresh => {
                tracing::warn!(reference, error = %e, "refresh failed; answering from the cache");
                Ok(cached)
            }
            Err(e) => Err(e),
        }
    }

    fn is_stale(&self, payin: &Payin) -> bool {
        let age = Utc::now().signed_duration_since(payin.checked_at);
        age.to_std()
            .is_ok_and(|age| age >= self.settings.poll_interval)
    }

    /// Refund: a SUCCEEDED payin, once, one request upstream however many callers race.
    pub async fn refund(
        &self,
        command: &RefundCommand,
        key: &str,
        language: Language,
    ) -> Result<Refund, PaymentsError> {
        let reference = command.reference.as_str();
        let mut payin = self.store.load_payin(reference).await?;
        if payin.as_ref().is_none_or(|p| !p.status.is_terminal()) {
            payin = self
                .refresh(reference, language, ObservationSource::Api)
                .await?
                .or(payin);
        }
        let payin = payin.ok_or(PaymentsError::NotFound)?;
        let (amount, full) = command
            .resolve_amount(payin.amount)
            .map_err(PaymentsError::Invalid)?;
        let upstream_key = upstream_idempotency_key("refund", key);
        check_refundable(&payin, upstream_key)?;
        if let Some(done) = payin
            .refund
            .as_ref()
            .filter(|r| r.requested_with == upstream_key.to_string())
        {
            return Ok(done.clone());
        }

        self.lock_refund(reference, key).await?;
        // Whoever held the lock before may have refunded in the meantime.
        let payin = self
            .store
            .load_payin(reference)
            .await?
            .ok_or(PaymentsError::NotFound)?;
        if let Err(e) = check_refundable(&payin, upstream_key) {
            self.store.unlock_refund(reference, key).await?;
            return Err(e);
        }
        let order = RefundOrder {
            reason: command.reason.clone(),
            external_reference: command.external_reference.clone(),
            partial_amount: (!full).then_some(amount),
        };
        match self
            .provider
            .refund(reference, &order, upstream_key, language)
            .await
        {
            Ok(mut refund) => {
                refund.requested_with = upstream_key.to_string();
                if refund.external_reference.is_empty() {
                    refund.external_reference = command.external_reference.clone();
                }
                if refund.reason.is_empty() {
                    refund.reason = command.reason.clone();
                }
                let saved = self
                    .update(reference, |p| p.refund = Some(refund.clone()))
                    .await;
                // The lock stays if the refund could not be recorded, so no other key can
                // refund again before it expires.
                saved?;
                self.store.unlock_refund(reference, key).await?;
                Ok(refund)
            }
            Err(ProviderError::OutcomeUnknown(reason)) => {
                // Novasend may have refunded: only this key (same upstream key) may try again.
                tracing::warn!(
                    reference,
                    reason,
                    "refund outcome unknown; keeping the refund lock"
                );
                self.store
                    .lock_refund(reference, key, self.settings.idempotency_ttl)
                    .await?;
                Err(ProviderError::OutcomeUnknown(reason).into())
            }
            Err(e) => {
                self.store.unlock_refund(reference, key).await?;
                Err(match e {
                    ProviderError::Conflict(_) => {
                        PaymentsError::NotRefundable(NotRefundable::AlreadyRefunded)
                    }
                    other => other.into(),
                })
            }
        }
    }

    /// Takes the payin's refund lock, waiting (bounded) for another key's refund to finish.
    async fn lock_refund(&self, reference: &str, key: &str) -> Result<(), PaymentsError> {
        let deadline = tokio::time::Instant::now() + self.settings.idempotency_wait;
        loop {
            let lock = self
                .store
                .lock_refund(reference, key, self.settings.lease())
                .await?;
            if lock.is_held() {
                return Ok(());
            }
            if let Some(payin) = self.store.load_payin(reference).await?
                && payin.has_live_refund()
            {
                return Err(PaymentsError::NotRefundable(NotRefundable::AlreadyRefunded));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(PaymentsError::NotRefundable(
                    NotRefundable::AnotherRefundUnresolved,
                ));
            }
            tokio::time::sleep(REFUND_LOCK_POLL).await;
        }
    }
}

fn check_refundable(payin: &Payin, upstream_key: Uuid) -> Result<(), PaymentsError> {
    if payin.status != PayinStatus::Succeeded {
        return Err(PaymentsError::NotRefundable(NotRefundable::NotSucceeded(
            payin.status,
        )));
    }
    match &payin.refund {
        Some(r) if r.requested_with == upstream_key.to_string() => Ok(()),
        Some(_) if payin.has_live_refund() => {
            Err(PaymentsError::NotRefundable(NotRefundable::AlreadyRefunded))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::upstream_idempotency_key;

    #[test]
    fn upstream_keys_are_stable_and_distinct_per_operation() {
        let a = upstream_idempotency_key("create", "k-1");
        assert_eq!(a, upstream_idempotency_key("create", "k-1"));
        assert_ne!(a, upstream_idempotency_key("refund", "k-1"));
        assert_ne!(a, upstream_idempotency_key("create", "k-2"));
        assert_eq!(a.get_version_num(), 5);
    }
}
