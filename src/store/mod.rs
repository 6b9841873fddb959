//! Shared state: idempotency records, the payin cache, reference claims and refund-sent marks.
//! Redis when replicas share it; in process for a single replica.

pub mod attempt;
pub mod memory;
pub mod redis;

use crate::domain::Payin;
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;

/// What the store tells this replica's watchers.
#[derive(Debug, Clone)]
pub enum ChangeNotice {
    /// A payin changed (on any replica): its new state.
    Changed(Arc<Payin>),
    /// Changes may have been missed (the feed reconnected): re-read what you watch.
    Resync,
}

/// How many notices a slow watcher may fall behind before it is told to resync.
pub const CHANGE_FEED_CAPACITY: usize = 1024;

/// Which idempotency record: the operation (`create`, `refund`) and the caller's key.
#[derive(Debug, Clone, Copy)]
pub struct IdempotencyScope<'a> {
    pub operation: &'static str,
    pub key: &'a str,
}

/// The merchant reference a create claims for its idempotency key, in the same step that
/// opens the record: one round trip instead of two, and no window between them.
#[derive(Debug, Clone, Copy)]
pub struct ReferenceClaim<'a> {
    pub reference: &'a str,
    /// How long the claim lives (it is extended with the payin it names).
    pub ttl: Duration,
    /// The provider the create is routed to, kept with a new record: every later attempt
    /// with the key goes to the provider the first one may have reached.
    pub provider: &'a str,
}

/// A final response, kept to be replayed byte for byte: gRPC code 0 with the encoded message,
/// or an error code with its message and encoded details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredOutcome {
    pub code: i32,
    pub message: String,
    pub body: Vec<u8>,
}

impl StoredOutcome {
    /// A successful answer: gRPC code 0 (OK) and the encoded message.
    pub fn ok(body: Vec<u8>) -> Self {
        Self {
            code: 0,
            message: String::new(),
            body,
        }
    }
}

/// An idempotency record's final outcome, to write with the payin it answers with
/// (`Store::save_payin_finishing`).
#[derive(Debug, Clone, Copy)]
pub struct Finish<'a> {
    pub scope: IdempotencyScope<'a>,
    pub owner: &'a str,
    pub outcome: &'a StoredOutcome,
    /// How long the finished record lives.
    pub ttl: Duration,
}

/// What a claim (of a reference, or of a payin's refund-sent mark) found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// It was free; it is the holder's now.
    New,
    /// The same holder had it already (its expiry is refreshed).
    AlreadyHeld,
    /// Another holder has it.
    TakenByOther,
}

impl Claim {
    fn from_script(reply: i64) -> Self {
        match reply {
            1 => Claim::New,
            2 => Claim::AlreadyHeld,
            _ => Claim::TakenByOther,
        }
    }

    pub fn is_held(self) -> bool {
        self != Claim::TakenByOther
    }
}

/// What `begin` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// This call owns the record now.
    Acquired(Acquired),
    /// The first call finished: here is its response.
    Replay(StoredOutcome),
    /// The key was used for a different request.
    Conflict,
    /// The first call is still running.
    InFlight,
}

/// A record `begin` opened (or took over) for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acquired {
    /// Leased to this owner.
    pub owner: String,
    /// An earlier attempt with the same key ended without a final outcome (or its replica
    /// died), so the work must reconcile first.
    pub resumed: bool,
    /// What the reference claim asked of `begin` found, if one was asked.
    pub reference: Option<Claim>,
    /// The provider the record keeps for its create (none for other operations, and for
    /// records older than providers).
    pub provider: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    /// The attempt's lease on its idempotency record ran out and another attempt took it.
    #[error("this attempt no longer holds its idempotency record")]
    LeaseLost,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Opens, replays or joins the idempotency record of `scope`, atomically. A new or
    /// taken-over record is leased to the caller for `lease`; the record lives `ttl`. A record
    /// whose lease is still running is never taken over. Once the record is the caller's,
    /// `claim`'s reference is claimed for `scope.key` in the same step (and only then).
    async fn begin(
        &self,
        scope: IdempotencyScope<'_>,
        fingerprint: &str,
        lease: Duration,
        ttl: Duration,
        claim: Option<ReferenceClaim<'_>>,
    ) -> Result<Begin, StoreError>;

    /// The provider the record of `scope` keeps, if the record exists for the same request
    /// (`fingerprint`): where its first attempt went.
    async fn recorded_provider(
        &self,
        scope: IdempotencyScope<'_>,
        fingerprint: &str,
    ) -> Result<Option<String>, StoreError>;

    /// Extends `owner`'s lease to `lease` from now, unless it already runs longer (a lease is
    /// never shortened). `false`: `owner` no longer holds the record (its lease ran out and
    /// another attempt took it over, or it was closed).
    async fn renew(
        &self,
        scope: IdempotencyScope<'_>,
        owner: &str,
        lease: Duration,
    ) -> Result<bool, StoreError>;

    /// Stores the final outcome if `owner` still holds the record. `false`: it does not, and
    /// nothing was written.
    async fn finish(
        &self,
        scope: IdempotencyScope<'_>,
        owner: &str,
        outcome: &StoredOutcome,
        ttl: Duration,
    ) -> Result<bool, StoreError>;

    /// Ends a transient attempt: the fingerprint stays, so a retry with the same key and
    /// request carries the work through. `false`: `owner` did not hold the record.
    async fn release(&self, scope: IdempotencyScope<'_>, owner: &str) -> Result<bool, StoreError>;

    /// Deletes the record, for a request found invalid after the record was opened.
    /// `false`: `owner` did not hold the record.
    async fn forget(&self, scope: IdempotencyScope<'_>, owner: &str) -> Result<bool, StoreError>;

    /// Gives a reference back, if `key` holds it (the payin was never created upstream).
    async fn unclaim_reference(&self, reference: &str, key: &str) -> Result<(), StoreError>;

    async fn load_payin(&self, reference: &str) -> Result<Option<Payin>, StoreError>;

    /// Finds the merchant reference of a payin from `provider`'s reference for it (each
    /// provider's references live apart: two providers may use the same one).
    async fn reference_for_provider(
        &self,
        provider: &str,
        provider_reference: &str,
    ) -> Result<Option<String>, StoreError>;

    /// Writes `payin` if the stored version is still `expected_version` (0: none stored).
    /// `payin.version` must be `expected_version + 1`. `false`: someone wrote first.
    /// The same atomic step publishes the new state to every replica (with `announce`) and
    /// keeps non-terminal payins on the reconciler's schedule; terminal ones leave it.
    async fn save_payin(
        &self,
        payin: &Payin,
        expected_version: u64,
        options: SaveOptions,
    ) -> Result<bool, StoreError>;

    /// `save_payin`, and once the payin is saved, `finish` of the record that answers with
    /// it: in one atomic step where the store can (one script on a single primary), else
    /// one after the other. `None`: not saved, and nothing finished; `Some(finished)`:
    /// saved, and whether the record was finished (`false`: not here, e.g. `owner` lost it
    /// or the second step failed; the caller's own `finish` then says what became of it).
    async fn save_payin_finishing(
        &self,
        payin: &Payin,
        expected_version: u64,
        options: SaveOptions,
        finish: Finish<'_>,
    ) -> Result<Option<bool>, StoreError> {
        save_then_finish(self, payin, expected_version, options, finish).await
    }

    /// Forgets a cached payin that charges no one (an intent whose payment step was refused),
    /// with its provider-reference index and its place on the reconciler's schedule, so that
    /// a new create of the reference starts clean. Its version must still be `payin`'s.
    async fn drop_payin(&self, payin: &Payin) -> Result<(), StoreError>;

    /// Every change any replica announces, as it arrives here.
    fn changes(&self) -> broadcast::Receiver<ChangeNotice>;

    /// Takes the right to poll the provider for `reference` for the next `interval`, on one
    /// replica; or says how long the lease someone else took still runs.
    async fn try_poll_lease(
        &self,
        reference: &str,
        interval: Duration,
    ) -> Result<PollLease, StoreError>;

    /// Takes up to `limit` non-terminal payins whose reconciliation is due and holds them
    /// for `hold`, so that other replicas skip them meanwhile.
    async fn claim_due_reconciliations(
        &self,
        limit: usize,
        hold: Duration,
    ) -> Result<Vec<String>, StoreError>;

    /// Sets the next reconciliation of a still non-terminal payin.
    async fn schedule_reconciliation(
        &self,
        reference: &str,
        after: Duration,
    ) -> Result<(), StoreError>;

    /// Takes a payin off the reconciler's schedule (its cache entry expired).
    async fn unschedule_reconciliation(&self, reference: &str) -> Result<(), StoreError>;

    /// Marks the cached payin as refund-sent by `holder` (the caller's refund key), unless
    /// another holder marked it first. The mark is part of the payin's cache entry: nothing
    /// but that entry's expiry removes it. `None`: the payin is not cached.
    async fn mark_refund_sent(
        &self,
        reference: &str,
        holder: &str,
    ) -> Result<Option<Claim>, StoreError>;

    /// Readiness: whether the store takes a write now (a read-only replica answers reads).
    async fn check_writable(&self) -> Result<(), StoreError>;
}

/// What `try_poll_lease` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollLease {
    /// This caller polls now.
    Taken,
    /// Another poll happened lately; the next may come after this long.
    HeldFor(Duration),
}

/// `save_payin_finishing` as two steps, for a store that cannot write both at once: the
/// finish only once the payin is saved. A finish that fails answers `false` (not finished
/// here); the caller's own `finish` then says what became of the record.
pub(crate) async fn save_then_finish<S: Store + ?Sized>(
    store: &S,
    payin: &Payin,
    expected_version: u64,
    options: SaveOptions,
    finish: Finish<'_>,
) -> Result<Option<bool>, StoreError> {
    if !store.save_payin(payin, expected_version, options).await? {
        return Ok(None);
    }
    let Finish {
        scope,
        owner,
        outcome,
        ttl,
    } = finish;
    Ok(Some(
        store
            .finish(scope, owner, outcome, ttl)
            .await
            .unwrap_or(false),
    ))
}

/// How a payin is saved.
#[derive(Debug, Clone, Copy)]
pub struct SaveOptions {
    /// Publish the new state to watchers (something streams report changed).
    pub announce: bool,
    /// How long the payin stays cached.
    pub ttl: Duration,
    /// When a new non-terminal payin is first reconciled, unless something else refreshes it.
    pub reconcile_after: Duration,
}

/// A name no other attempt, in this process or any other, has held: this process's random
/// name (drawn once) and a count. Drawing 128 random bits for each attempt cost a system call
/// on every create.
fn new_owner() -> String {
    static PROCESS: std::sync::LazyLock<uuid::Uuid> = std::sync::LazyLock::new(uuid::Uuid::new_v4);
    static ATTEMPTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let attempt = ATTEMPTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{attempt}", PROCESS.simple())
}
