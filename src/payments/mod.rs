//! The payment operations: what CreatePayin, GetPayin and Refund do, independent of gRPC.
//! Idempotency records are opened and closed by the API layer around these calls; here we
//! decide what to ask the payin's provider and what to keep. `create` and `refund` have a file each; this
//! one holds reading (get, refresh) and the one compare-and-set write of a cached payin.

mod confirm;
mod create;
mod refund;
mod terminal_cache;

use crate::domain::{
    Applied, Language, ObservationSource, Payin, PayinStatus, ProviderPayin, Violations,
};
use crate::provider::{PayinLookup, PaymentProvider, ProviderFailure, Providers};
use crate::store::attempt::Attempt;
use crate::store::{SaveOptions, Store, StoreError};
use crate::telemetry::metrics::CONTRADICTIONS;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;
use terminal_cache::TerminalCache;
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
    /// How long a running attempt holds its idempotency record between two renewals; an
    /// attempt whose replica died is taken over after this.
    pub attempt_lease: Duration,
}

impl PaymentsSettings {
    /// How long one provider call can last: its timeout, and a margin for the time it takes
    /// to give up on it. The fence holds an attempt's record at least that long.
    pub fn provider_call_bound(&self) -> Duration {
        self.upstream_timeout + Duration::from_secs(2)
    }
}

/// Why a refund cannot be made (FAILED_PRECONDITION).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotRefundable {
    NotSucceeded(PayinStatus),
    AlreadyRefunded,
    /// Another key's refund of this payin may have reached the provider (sent, outcome
    /// unknown or refused); only that key may retry.
    AnotherRefundRequested,
    /// The payin's provider (named) offers no refunds through the gateway.
    NotOffered(&'static str),
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
    /// The write may or may not have happened upstream, and reconciliation could not tell.
    #[error("outcome unknown")]
    OutcomeUnknown,
    /// As `OutcomeUnknown`, for a write the provider cannot deduplicate (HUB2's payment
    /// attempt): the record stays held this long, until any request still in flight has
    /// surely ended, before a retry may reconcile.
    #[error("outcome unknown; settling")]
    OutcomeSettling(Duration),
    #[error(transparent)]
    Provider(#[from] ProviderFailure),
    /// ConfirmPayin for a payin whose next action is not a one-time code.
    #[error("this payin does not wait for a one-time code")]
    NotConfirmable,
    /// The payin's provider is not enabled on this replica.
    #[error("provider `{0}` is not enabled")]
    ProviderNotEnabled(String),
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

#[derive(Clone)]
pub struct Payments {
    store: Arc<dyn Store>,
    providers: Providers,
    settings: PaymentsSettings,
    terminal: Arc<TerminalCache>,
}

impl Payments {
    pub fn new(store: Arc<dyn Store>, providers: Providers, settings: PaymentsSettings) -> Self {
        Self {
            terminal: TerminalCache::following(&store),
            store,
            providers,
            settings,
        }
    }

    pub fn providers(&self) -> &Providers {
        &self.providers
    }

    /// The provider holding `payin`; for a payin not cached, the default one (only it can
    /// be asked by merchant reference).
    fn provider_of(
        &self,
        payin: Option<&Payin>,
    ) -> Result<&Arc<dyn PaymentProvider>, PaymentsError> {
        match payin {
            None => Ok(self.providers.default_provider()),
            Some(payin) => self
                .providers
                .get(&payin.provider)
                .ok_or_else(|| PaymentsError::ProviderNotEnabled(payin.provider.clone())),
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn settings(&self) -> &PaymentsSettings {
        &self.settings
    }

    /// Applies an observation to the cached payin, or caches it when it is new. A change
    /// callers can see is announced to watchers.
    pub async fn upsert(
        &self,
        reference: &str,
        observed: ProviderPayin,
        source: ObservationSource,
    ) -> Result<Payin, PaymentsError> {
        self.modify(reference, |cached, now| {
            Ok(observe(reference, cached, observed.clone(), source, now))
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
            // Announced although streams report nothing of it: every replica's copy of a
            // terminal payin must learn of it.
            Ok((payin, true))
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
        self.modify_guessing(reference, false, None, change).await
    }

    /// `modify`, where `probably_new` skips the first read: a payin just created is most
    /// likely not cached yet, and the compare-and-set says so if it is. With `answering`, the
    /// payin saved is that attempt's answer: the same step may finish its record.
    async fn modify_guessing(
        &self,
        reference: &str,
        probably_new: bool,
        answering: Option<&Attempt>,
        change: impl Fn(Option<Payin>, DateTime<Utc>) -> Result<(Payin, bool), PaymentsError>,
    ) -> Result<Payin, PaymentsError> {
        for attempt in 0..SAVE_ATTEMPTS {
            let cached = match attempt == 0 && probably_new {
                true => None,
                false => self.store.load_payin(reference).await?,
            };
            let expected = cached.as_ref().map_or(0, |p| p.version);
            let (mut payin, announce) = change(cached, Utc::now())?;
            payin.version = expected + 1;
            let options = SaveOptions {
                announce,
                ttl: self.settings.payin_ttl,
                reconcile_after: self.settings.reconcile_after,
            };
            if self.save(&payin, expected, options, answering).await? {
                self.terminal.saved(&payin);
                return Ok(payin);
            }
        }
        Err(
            StoreError::Unavailable("the payin kept changing under concurrent writers".into())
                .into(),
        )
    }

    /// Saves `payin` (compare-and-set), finishing `answering`'s record with it in the same
    /// step when the attempt answers with the payin.
    async fn save(
        &self,
        payin: &Payin,
        expected: u64,
        options: SaveOptions,
        answering: Option<&Attempt>,
    ) -> Result<bool, StoreError> {
        let Some((attempt, outcome)) =
            answering.and_then(|attempt| Some((attempt, attempt.answer(payin)?)))
        else {
            return self.store.save_payin(payin, expected, options).await;
        };
        let saved = self
            .store
            .save_payin_finishing(payin, expected, options, attempt.finish(&outcome))
            .await?;
        if saved == Some(true) {
            attempt.finished(outcome);
        }
        Ok(saved.is_some())
    }

    /// Reads the payin's provider now and applies what it says. `Ok(None)`: the provider
    /// does not know it.
    pub async fn refresh(
        &self,
        reference: &str,
        language: Language,
        source: ObservationSource,
    ) -> Result<Option<Payin>, PaymentsError> {
        let cached = self.store.load_payin(reference).await?;
        self.refresh_from(reference, cached.as_ref(), language, source)
            .await
    }

    /// `refresh`, for a payin whose cached state (if any) was just read.
    async fn refresh_from(
        &self,
        reference: &str,
        cached: Option<&Payin>,
        language: Language,
        source: ObservationSource,
    ) -> Result<Option<Payin>, PaymentsError> {
        let provider = self.provider_of(cached)?;
        let lookup = PayinLookup {
            reference,
            provider_reference: cached
                .map(|p| p.provider_reference.as_str())
                .filter(|r| !r.is_empty()),
        };
        let observed = provider
            .get_payin(lookup, language)
            .await
            .map_err(ProviderFailure::of(&**provider))?;
        let Some(observed) = observed else {
            return Ok(None);
        };
        let payin = self.upsert(reference, observed, source).await?;
        Ok(Some(payin))
    }

    /// GetPayin: the cache while fresh, the provider otherwise.
    pub async fn get(
        &self,
        reference: &str,
        force_refresh: bool,
        language: Language,
    ) -> Result<Payin, PaymentsError> {
        if !force_refresh && let Some(kept) = self.terminal.get(reference) {
            return Ok(Arc::unwrap_or_clone(kept));
        }
        let generation = self.terminal.generation();
        let cached = self.store.load_payin(reference).await?;
        if let Some(payin) = &cached {
            self.terminal.offer(payin, generation);
        }
        let Some(cached) = cached else {
            // Not cached (expired, or created before this store): the provider may know it.
            return self
                .refresh_from(reference, None, language, ObservationSource::Api)
                .await?
                .ok_or(PaymentsError::NotFound);
        };
        let stale = !cached.status.is_terminal() && self.is_stale(&cached);
        if !force_refresh && !stale {
            return Ok(cached);
        }
        match self
            .refresh_from(reference, Some(&cached), language, ObservationSource::Api)
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
}

impl From<NotRefundable> for PaymentsError {
    fn from(reason: NotRefundable) -> Self {
        PaymentsError::NotRefundable(reason)
    }
}

/// One observation applied to what is cached (or cached as first seen), and whether watchers
/// must hear of it.
fn observe(
    reference: &str,
    cached: Option<Payin>,
    observed: ProviderPayin,
    source: ObservationSource,
    now: DateTime<Utc>,
) -> (Payin, bool) {
    let Some(mut payin) = cached else {
        let mut payin = Payin::first_seen(reference, "", "", observed, now);
        payin.last_source = source;
        return (payin, true);
    };
    let applied = payin.apply(observed, now);
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
    (payin, matches!(applied, Applied::Changed { .. }))
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
