//! What the in-process store holds (idempotency records, reference claims, cached payins,
//! poll leases, the reconciliation schedule), each with its expiry, and the rules for claims.

use crate::domain::Payin;
use crate::store::{Claim, IdempotencyScope, StoredOutcome};
use std::collections::HashMap;
use std::time::Instant;

#[derive(Debug, Clone)]
pub(super) enum RecordState {
    Running { owner: String, lease_until: Instant },
    Released,
    Done(StoredOutcome),
}

#[derive(Debug, Clone)]
pub(super) struct Record {
    pub(super) fingerprint: String,
    pub(super) state: RecordState,
    pub(super) expires_at: Instant,
    /// A create's provider.
    pub(super) provider: Option<String>,
}

#[derive(Debug, Clone)]
pub(super) struct Expiring<T> {
    pub(super) value: T,
    pub(super) expires_at: Instant,
}

#[derive(Default)]
pub(super) struct State {
    pub(super) records: HashMap<String, Record>,
    pub(super) claims: HashMap<String, Expiring<String>>,
    pub(super) payins: HashMap<String, Expiring<Payin>>,
    pub(super) provider_index: HashMap<String, Expiring<String>>,
    /// Refund-sent marks by merchant reference: they go with their payin's cache entry.
    pub(super) refund_marks: HashMap<String, String>,
    pub(super) poll_leases: HashMap<String, Expiring<()>>,
    /// Non-terminal payins and when to reconcile them next.
    pub(super) open_payins: HashMap<String, Instant>,
}

pub(super) fn record_key(scope: IdempotencyScope<'_>) -> String {
    format!("{}:{}", scope.operation, scope.key)
}

pub(super) fn provider_index_key(provider: &str, provider_reference: &str) -> String {
    format!("{provider}:{provider_reference}")
}

pub(super) fn owned_by(record: &Record, owner: &str) -> bool {
    matches!(&record.state, RecordState::Running { owner: o, .. } if o == owner)
}

/// Takes a claim if it is free or already the holder's.
pub(super) fn take_claim(
    map: &mut HashMap<String, Expiring<String>>,
    key: &str,
    holder: &str,
    expires_at: Instant,
) -> Claim {
    match map.get(key) {
        Some(existing) if existing.value != holder => Claim::TakenByOther,
        existing => {
            let claim = if existing.is_some() {
                Claim::AlreadyHeld
            } else {
                Claim::New
            };
            map.insert(
                key.to_owned(),
                Expiring {
                    value: holder.to_owned(),
                    expires_at,
                },
            );
            claim
        }
    }
}

pub(super) fn unclaim(map: &mut HashMap<String, Expiring<String>>, key: &str, holder: &str) {
    if map.get(key).is_some_and(|c| c.value == holder) {
        map.remove(key);
    }
}
