//! The store's operations, each one check-then-act under the store's mutex.

use super::MemoryStore;
use super::state::{
    Expiring, Record, RecordState, State, owned_by, provider_index_key, record_key, take_claim,
    unclaim,
};
use crate::domain::Payin;
use crate::store::{
    Acquired, Begin, ChangeNotice, Claim, IdempotencyScope, PollLease, ReferenceClaim, SaveOptions,
    Store, StoreError, StoredOutcome, new_owner,
};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

#[async_trait]
impl Store for MemoryStore {
    async fn begin(
        &self,
        scope: IdempotencyScope<'_>,
        fingerprint: &str,
        lease: Duration,
        ttl: Duration,
        claim: Option<ReferenceClaim<'_>>,
    ) -> Result<Begin, StoreError> {
        Ok(self.with(|state, now| {
            let owner = new_owner();
            let claim_reference = |state: &mut State| {
                claim.map(|c| {
                    let expires_at = now + c.ttl;
                    take_claim(&mut state.claims, c.reference, scope.key, expires_at)
                })
            };
            let running = RecordState::Running {
                owner: owner.clone(),
                lease_until: now + lease,
            };
            let Some(record) = state.records.get_mut(&record_key(scope)) else {
                let provider = claim.map(|c| c.provider.to_owned());
                state.records.insert(
                    record_key(scope),
                    Record {
                        fingerprint: fingerprint.to_owned(),
                        state: running,
                        expires_at: now + ttl,
                        provider: provider.clone(),
                    },
                );
                return Begin::Acquired(Acquired {
                    owner,
                    resumed: false,
                    reference: claim_reference(state),
                    provider,
                });
            };
            if record.fingerprint != fingerprint {
                return Begin::Conflict;
            }
            match &record.state {
                RecordState::Done(outcome) => Begin::Replay(outcome.clone()),
                RecordState::Running { lease_until, .. } if *lease_until > now => Begin::InFlight,
                RecordState::Running { .. } | RecordState::Released => {
                    record.state = running;
                    let provider = record.provider.clone();
                    Begin::Acquired(Acquired {
                        owner,
                        resumed: true,
                        reference: claim_reference(state),
                        provider,
                    })
                }
            }
        }))
    }

    async fn recorded_provider(
        &self,
        scope: IdempotencyScope<'_>,
        fingerprint: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(self.with(|state, _| {
            state
                .records
                .get(&record_key(scope))
                .filter(|r| r.fingerprint == fingerprint)
                .and_then(|r| r.provider.clone())
        }))
    }

    async fn renew(
        &self,
        scope: IdempotencyScope<'_>,
        owner: &str,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        Ok(self.with(
            |state, now| match state.records.get_mut(&record_key(scope)) {
                Some(record) if owned_by(record, owner) => {
                    if let RecordState::Running { lease_until, .. } = &mut record.state {
                        *lease_until = (*lease_until).max(now + lease);
                    }
                    true
                }
                _ => false,
            },
        ))
    }

    async fn finish(
        &self,
        scope: IdempotencyScope<'_>,
        owner: &str,
        outcome: &StoredOutcome,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        Ok(self.with(
            |state, now| match state.records.get_mut(&record_key(scope)) {
                Some(record) if owned_by(record, owner) => {
                    record.state = RecordState::Done(outcome.clone());
                    record.expires_at = now + ttl;
                    true
                }
                _ => false,
            },
        ))
    }

    async fn release(&self, scope: IdempotencyScope<'_>, owner: &str) -> Result<bool, StoreError> {
        Ok(
            self.with(|state, _| match state.records.get_mut(&record_key(scope)) {
                Some(record) if owned_by(record, owner) => {
                    record.state = RecordState::Released;
                    true
                }
                _ => false,
            }),
        )
    }

    async fn forget(&self, scope: IdempotencyScope<'_>, owner: &str) -> Result<bool, StoreError> {
        Ok(self.with(|state, _| {
            let key = record_key(scope);
            let owned = state.records.get(&key).is_some_and(|r| owned_by(r, owner));
            if owned {
                state.records.remove(&key);
            }
            owned
        }))
    }

    async fn unclaim_reference(&self, reference: &str, key: &str) -> Result<(), StoreError> {
        self.with(|state, _| unclaim(&mut state.claims, reference, key));
        Ok(())
    }

    async fn load_payin(&self, reference: &str) -> Result<Option<Payin>, StoreError> {
        Ok(self.with(|state, _| state.payins.get(reference).map(|p| p.value.clone())))
    }

    async fn reference_for_provider(
        &self,
        provider: &str,
        provider_reference: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(self.with(|state, _| {
            state
                .provider_index
                .get(&provider_index_key(provider, provider_reference))
                .map(|r| r.value.clone())
        }))
    }

    async fn save_payin(
        &self,
        payin: &Payin,
        expected_version: u64,
        options: SaveOptions,
    ) -> Result<bool, StoreError> {
        let saved = self.with(|state, now| {
            let current = state
                .payins
                .get(&payin.reference)
                .map_or(0, |p| p.value.version);
            if current != expected_version {
                return false;
            }
            let expires_at = now + options.ttl;
            state.payins.insert(
                payin.reference.clone(),
                Expiring {
                    value: payin.clone(),
                    expires_at,
                },
            );
            if let Some(claim) = state.claims.get_mut(&payin.reference) {
                claim.expires_at = expires_at;
            }
            if !payin.provider_reference.is_empty() {
                state.provider_index.insert(
                    provider_index_key(&payin.provider, &payin.provider_reference),
                    Expiring {
                        value: payin.reference.clone(),
                        expires_at,
                    },
                );
            }
            if payin.status.is_terminal() {
                state.open_payins.remove(&payin.reference);
            } else {
                state
                    .open_payins
                    .entry(payin.reference.clone())
                    .or_insert(now + options.reconcile_after);
            }
            // Announced under the lock, as Redis publishes inside its script: two saves are
            // announced in the order they were made. No receiver (no stream open) is fine.
            if options.announce {
                let _ = self
                    .changes
                    .send(ChangeNotice::Changed(Arc::new(payin.clone())));
            }
            true
        });
        Ok(saved)
    }

    async fn drop_payin(&self, payin: &Payin) -> Result<(), StoreError> {
        self.with(|state, _| {
            let current = state.payins.get(&payin.reference).map(|p| p.value.version);
            if current != Some(payin.version) {
                return;
            }
            state.payins.remove(&payin.reference);
            let index = provider_index_key(&payin.provider, &payin.provider_reference);
            if state
                .provider_index
                .get(&index)
                .is_some_and(|r| r.value == payin.reference)
            {
                state.provider_index.remove(&index);
            }
            state.open_payins.remove(&payin.reference);
            state.refund_marks.remove(&payin.reference);
        });
        Ok(())
    }

    fn changes(&self) -> broadcast::Receiver<ChangeNotice> {
        self.changes.subscribe()
    }

    async fn try_poll_lease(
        &self,
        reference: &str,
        interval: Duration,
    ) -> Result<PollLease, StoreError> {
        Ok(self.with(|state, now| {
            if let Some(lease) = state.poll_leases.get(reference) {
                return PollLease::HeldFor(lease.expires_at.saturating_duration_since(now));
            }
            state.poll_leases.insert(
                reference.to_owned(),
                Expiring {
                    value: (),
                    expires_at: now + interval,
                },
            );
            PollLease::Taken
        }))
    }

    async fn claim_due_reconciliations(
        &self,
        limit: usize,
        hold: Duration,
    ) -> Result<Vec<String>, StoreError> {
        Ok(self.with(|state, now| {
            let mut due: Vec<(Instant, String)> = state
                .open_payins
                .iter()
                .filter(|(_, at)| **at <= now)
                .map(|(reference, at)| (*at, reference.clone()))
                .collect();
            due.sort();
            due.truncate(limit);
            for (_, reference) in &due {
                state.open_payins.insert(reference.clone(), now + hold);
            }
            due.into_iter().map(|(_, reference)| reference).collect()
        }))
    }

    async fn schedule_reconciliation(
        &self,
        reference: &str,
        after: Duration,
    ) -> Result<(), StoreError> {
        self.with(|state, now| {
            if let Some(at) = state.open_payins.get_mut(reference) {
                *at = now + after;
            }
        });
        Ok(())
    }

    async fn unschedule_reconciliation(&self, reference: &str) -> Result<(), StoreError> {
        self.with(|state, _| state.open_payins.remove(reference));
        Ok(())
    }

    async fn mark_refund_sent(
        &self,
        reference: &str,
        holder: &str,
    ) -> Result<Option<Claim>, StoreError> {
        Ok(self.with(|state, _| {
            if !state.payins.contains_key(reference) {
                return None;
            }
            Some(match state.refund_marks.get(reference) {
                Some(existing) if existing != holder => Claim::TakenByOther,
                Some(_) => Claim::AlreadyHeld,
                None => {
                    state
                        .refund_marks
                        .insert(reference.to_owned(), holder.to_owned());
                    Claim::New
                }
            })
        }))
    }

    async fn check_writable(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
