//! One attempt at a time, really (contract §3): the attempt that opened an idempotency record
//! keeps it by renewing a short lease while it works. Before anything that may move money it
//! passes the fence, which extends its hold over the whole provider call: a call in flight
//! can outlive its replica, so the record must not be taken over before that call has surely
//! ended. An attempt whose replica died loses the record within one lease (or the rest of a
//! call); an attempt that lost it can neither call the provider (the fence fails) nor record
//! a result (`finish` checks the owner).

use super::{Acquired, Claim, Finish, IdempotencyScope, Store, StoreError, StoredOutcome};
use crate::domain::Payin;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::time::Instant;

/// How long a renewal's round trip may take, beyond the call it covers (a quarter of the
/// call, at most this).
const RENEWAL_SLACK: Duration = Duration::from_secs(5);

/// An attempt that owns its idempotency record. Cloning shares the same hold.
#[derive(Clone)]
pub struct Attempt {
    hold: Arc<Hold>,
}

struct Hold {
    store: Arc<dyn Store>,
    operation: &'static str,
    key: String,
    owner: String,
    resumed: bool,
    reference: Option<Claim>,
    provider: Option<String>,
    lease: Duration,
    /// How long one provider call can last (its timeout, and a margin).
    call: Duration,
    /// How long the record lives once finished.
    record_ttl: Duration,
    state: Mutex<HoldState>,
    /// How the call answers with the payin it creates (see `answers_with`).
    answer: OnceLock<Answer>,
    /// The outcome a save already finished the record with.
    finished: Mutex<Option<StoredOutcome>>,
}

/// Encodes the response a call gives with a payin.
type Answer = Box<dyn Fn(&Payin) -> Vec<u8> + Send + Sync>;

#[derive(Clone, Copy)]
struct HoldState {
    /// Until when the record is surely ours: the last confirmed renewal's sending time plus
    /// the lease (measured from before the request left, so never later than Redis's view).
    held_until: Instant,
    /// A renewal found another owner: nothing may be done in this record's name any more.
    lost: bool,
}

impl Attempt {
    /// The attempt that `begin` gave the record to, held until `held_until` (the lease
    /// `begin` granted, timed from before it was sent). `lease` is what each renewal grants
    /// (see [`Attempt::renewing`]); `call` bounds one provider call, which the fence holds the
    /// record for.
    pub fn hold(
        store: Arc<dyn Store>,
        scope: IdempotencyScope<'_>,
        acquired: Acquired,
        (lease, call): (Duration, Duration),
        held_until: Instant,
        record_ttl: Duration,
    ) -> Self {
        Attempt {
            hold: Arc::new(Hold {
                store,
                operation: scope.operation,
                key: scope.key.to_owned(),
                owner: acquired.owner,
                resumed: acquired.resumed,
                reference: acquired.reference,
                provider: acquired.provider,
                lease,
                call,
                record_ttl,
                state: Mutex::new(HoldState {
                    held_until,
                    lost: false,
                }),
                answer: OnceLock::new(),
                finished: Mutex::new(None),
            }),
        }
    }

    /// Runs `work` while renewing the lease, in the same task: no task of its own to spawn
    /// and abort on every call. The renewals stop with `work` (or once the record is lost).
    pub async fn renewing<T>(&self, work: impl Future<Output = T>) -> T {
        let mut work = std::pin::pin!(work);
        tokio::select! {
            biased;
            output = &mut work => return output,
            () = self.renew_periodically() => {}
        }
        work.await
    }

    pub fn scope(&self) -> IdempotencyScope<'_> {
        IdempotencyScope {
            operation: self.hold.operation,
            key: &self.hold.key,
        }
    }

    /// The caller's idempotency key.
    pub fn key(&self) -> &str {
        &self.hold.key
    }

    pub fn owner(&self) -> &str {
        &self.hold.owner
    }

    /// An earlier attempt with the same key ended without a known outcome: reconcile first.
    pub fn resumed(&self) -> bool {
        self.hold.resumed
    }

    /// What the reference claim taken with the record found, if one was asked.
    pub fn reference_claim(&self) -> Option<Claim> {
        self.hold.reference
    }

    /// The provider the record keeps for its create: the one every attempt uses.
    pub fn provider(&self) -> Option<&str> {
        self.hold.provider.as_deref()
    }

    /// Says how this call answers with the payin it creates (a create's response), so that
    /// the save that keeps that payin may finish the record in the same step: one round trip
    /// fewer, and no moment where the payin is kept but its answer is not.
    pub fn answers_with(&self, answer: impl Fn(&Payin) -> Vec<u8> + Send + Sync + 'static) {
        let _ = self.hold.answer.set(Box::new(answer));
    }

    /// The successful outcome that answers with `payin`, if the call said how it answers.
    pub fn answer(&self, payin: &Payin) -> Option<StoredOutcome> {
        let answer = self.hold.answer.get()?;
        Some(StoredOutcome::ok(answer(payin)))
    }

    /// The finish of this attempt's record with `outcome`.
    pub fn finish<'a>(&'a self, outcome: &'a StoredOutcome) -> Finish<'a> {
        Finish {
            scope: self.scope(),
            owner: &self.hold.owner,
            outcome,
            ttl: self.hold.record_ttl,
        }
    }

    /// Notes that the store finished the record with `outcome`.
    pub fn finished(&self, outcome: StoredOutcome) {
        *self.hold.finished.lock().unwrap_or_else(|p| p.into_inner()) = Some(outcome);
    }

    /// Whether the record is already finished with exactly `outcome`.
    pub fn finished_with(&self, outcome: &StoredOutcome) -> bool {
        self.finished_outcome().as_ref() == Some(outcome)
    }

    fn finished_with_any(&self) -> bool {
        self.finished_outcome().is_some()
    }

    fn finished_outcome(&self) -> std::sync::MutexGuard<'_, Option<StoredOutcome>> {
        self.hold.finished.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Succeeds only once this attempt surely holds its record until the provider call that
    /// follows has ended, whatever becomes of this replica meanwhile. Call it right before a
    /// provider write.
    pub async fn fence(&self) -> Result<(), StoreError> {
        let state = self.state();
        if state.lost {
            return Err(StoreError::LeaseLost);
        }
        if Instant::now() + self.hold.call <= state.held_until {
            return Ok(());
        }
        // The renewal is timed from before it was sent: ask for enough that the call still
        // fits once the answer is back, and check that it does.
        let slack = (self.hold.call / 4).min(RENEWAL_SLACK);
        if !self.renew(self.hold.call + slack).await? {
            return Err(StoreError::LeaseLost);
        }
        if Instant::now() + self.hold.call <= self.state().held_until {
            Ok(())
        } else {
            Err(StoreError::Unavailable(
                "the idempotency store answered too slowly to hold the record over the call".into(),
            ))
        }
    }

    /// Extends the hold to `lease` from now (never shortens it).
    async fn renew(&self, lease: Duration) -> Result<bool, StoreError> {
        let sent = Instant::now();
        let held = self
            .hold
            .store
            .renew(self.scope(), &self.hold.owner, lease)
            .await?;
        let mut state = self.hold.state.lock().unwrap_or_else(|p| p.into_inner());
        if held {
            state.held_until = state.held_until.max(sent + lease);
        } else {
            state.lost = true;
        }
        Ok(held)
    }

    fn state(&self) -> HoldState {
        *self.hold.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Renews four times a lease, so that one or two slow round trips do not lose it.
    async fn renew_periodically(&self) {
        let period = self.hold.lease / 4;
        loop {
            tokio::time::sleep(period).await;
            match self.renew(self.hold.lease).await {
                Ok(true) => {}
                // Closed by the save that kept its answer, not taken over.
                Ok(false) if self.finished_with_any() => return,
                Ok(false) => {
                    tracing::warn!(
                        operation = self.hold.operation,
                        "idempotency record taken over by another attempt; this one stops acting"
                    );
                    return;
                }
                Err(e) => tracing::debug!(error = %e, "cannot renew the idempotency lease"),
            }
        }
    }
}
