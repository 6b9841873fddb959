//! The store's operations on Redis. On one Redis (or Sentinel) each is one script; on a
//! cluster, an operation whose keys live in several slots runs one script per slot, ordered
//! so that a crash between them leaves nothing unsafe: the provider-reference index and the
//! reconciler's schedule are written before the payin that needs them, and cleared after it.

use super::keys::OPEN_PAYINS;
use super::replicated::ScriptCall;
use super::replies::parse_begin;
use super::scripts::*;
use super::{CHANGES_CHANNEL, RedisStore, millis};
use crate::domain::Payin;
use crate::store::{
    Begin, ChangeNotice, Claim, Finish, IdempotencyScope, PollLease, ReferenceClaim, SaveOptions,
    Store, StoreError, StoredOutcome, new_owner, save_then_finish,
};
use async_trait::async_trait;
use std::time::Duration;
use tokio::sync::broadcast;

#[async_trait]
impl Store for RedisStore {
    async fn begin(
        &self,
        scope: IdempotencyScope<'_>,
        fingerprint: &str,
        lease: Duration,
        ttl: Duration,
        claim: Option<ReferenceClaim<'_>>,
    ) -> Result<Begin, StoreError> {
        let owner = new_owner();
        let mut call = ScriptCall::new(&BEGIN)
            .key(self.keys.record(scope))
            .arg(fingerprint)
            .arg(&owner)
            .arg(millis(lease))
            .arg(millis(ttl));
        if let Some(claim) = claim {
            if !self.keys.tagged() {
                call = call.key(self.keys.reference_claim(claim.reference));
            }
            call = call
                .arg(scope.key)
                .arg(millis(claim.ttl))
                .arg(claim.provider);
        }
        let (reply, acknowledged): (Vec<Vec<u8>>, bool) = self.run_claim("begin", call).await?;
        let began = parse_begin(reply, owner)?;
        let Begin::Acquired(mut acquired) = began else {
            return Ok(began);
        };
        let claimed = match acknowledged {
            true => self.claim_in_its_slot(scope, claim, &mut acquired).await,
            false => Err(self.unacknowledged()),
        };
        match claimed {
            Ok(()) => Ok(Begin::Acquired(acquired)),
            Err(e) => {
                // No provider call follows: a retry may take the record at once.
                let _ = self.release(scope, &acquired.owner).await;
                Err(e)
            }
        }
    }

    async fn recorded_provider(
        &self,
        scope: IdempotencyScope<'_>,
        fingerprint: &str,
    ) -> Result<Option<String>, StoreError> {
        let (recorded_fingerprint, provider): (Option<String>, Option<String>) = self
            .query(
                "recorded_provider",
                redis::cmd("HMGET")
                    .arg(self.keys.record(scope))
                    .arg("fp")
                    .arg("provider"),
            )
            .await?;
        Ok(provider
            .filter(|p| !p.is_empty())
            .filter(|_| recorded_fingerprint.as_deref() == Some(fingerprint)))
    }

    async fn renew(
        &self,
        scope: IdempotencyScope<'_>,
        owner: &str,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        let renewed: i64 = self
            .run(
                "renew",
                RENEW
                    .key(self.keys.record(scope))
                    .arg(owner)
                    .arg(millis(lease)),
            )
            .await?;
        Ok(renewed == 1)
    }

    async fn finish(
        &self,
        scope: IdempotencyScope<'_>,
        owner: &str,
        outcome: &StoredOutcome,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let kept: i64 = self
            .run(
                "finish",
                FINISH
                    .key(self.keys.record(scope))
                    .arg(owner)
                    .arg(outcome.code)
                    .arg(&outcome.message)
                    .arg(&outcome.body[..])
                    .arg(millis(ttl)),
            )
            .await?;
        Ok(kept == 1)
    }

    async fn release(&self, scope: IdempotencyScope<'_>, owner: &str) -> Result<bool, StoreError> {
        let released: i64 = self
            .run("release", RELEASE.key(self.keys.record(scope)).arg(owner))
            .await?;
        Ok(released == 1)
    }

    async fn forget(&self, scope: IdempotencyScope<'_>, owner: &str) -> Result<bool, StoreError> {
        let forgotten: i64 = self
            .run("forget", FORGET.key(self.keys.record(scope)).arg(owner))
            .await?;
        Ok(forgotten == 1)
    }

    async fn unclaim_reference(&self, reference: &str, key: &str) -> Result<(), StoreError> {
        let _: i64 = self
            .run(
                "unclaim_reference",
                UNCLAIM.key(self.keys.reference_claim(reference)).arg(key),
            )
            .await?;
        Ok(())
    }

    async fn load_payin(&self, reference: &str) -> Result<Option<Payin>, StoreError> {
        let data: Option<Vec<u8>> = self
            .query(
                "load_payin",
                redis::cmd("HGET")
                    .arg(self.keys.payin(reference))
                    .arg("data"),
            )
            .await?;
        data.map(|bytes| {
            serde_json::from_slice(&bytes)
                .map_err(|e| StoreError::Corrupt(format!("cached payin: {e}")))
        })
        .transpose()
    }

    async fn reference_for_provider(
        &self,
        provider: &str,
        provider_reference: &str,
    ) -> Result<Option<String>, StoreError> {
        self.query(
            "reference_for_provider",
            redis::cmd("GET").arg(self.keys.provider_index(provider, provider_reference)),
        )
        .await
    }

    async fn save_payin(
        &self,
        payin: &Payin,
        expected_version: u64,
        options: SaveOptions,
    ) -> Result<bool, StoreError> {
        let data = serde_json::to_vec(payin).expect("a payin serializes");
        if self.keys.tagged() {
            return self
                .save_payin_by_slot(payin, expected_version, options, data)
                .await;
        }
        let save = self.save_payin_call(&SAVE_PAYIN, payin, expected_version, options, data);
        let saved: i64 = self.run("save_payin", &save).await?;
        Ok(saved == 1)
    }

    async fn save_payin_finishing(
        &self,
        payin: &Payin,
        expected_version: u64,
        options: SaveOptions,
        finish: Finish<'_>,
    ) -> Result<Option<bool>, StoreError> {
        // On a cluster the record lives in another slot: one step after the other.
        if self.keys.tagged() {
            return save_then_finish(self, payin, expected_version, options, finish).await;
        }
        let data = serde_json::to_vec(payin).expect("a payin serializes");
        let mut call = self.save_payin_call(
            &SAVE_PAYIN_FINISHING,
            payin,
            expected_version,
            options,
            data,
        );
        call.key(self.keys.record(finish.scope))
            .arg(finish.owner)
            .arg(finish.outcome.code)
            .arg(&finish.outcome.message)
            .arg(&finish.outcome.body[..])
            .arg(millis(finish.ttl));
        let kept: i64 = self.run("save_payin_finishing", &call).await?;
        Ok((kept > 0).then_some(kept == 2))
    }

    async fn drop_payin(&self, payin: &Payin) -> Result<(), StoreError> {
        if self.keys.tagged() {
            return self.drop_payin_by_slot(payin).await;
        }
        let _: i64 = self
            .run(
                "drop_payin",
                DROP_PAYIN
                    .key(self.keys.payin(&payin.reference))
                    .key(
                        self.keys
                            .provider_index(&payin.provider, &payin.provider_reference),
                    )
                    .key(OPEN_PAYINS)
                    .arg(payin.version)
                    .arg(&payin.reference),
            )
            .await?;
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
        let remaining: i64 = self
            .run(
                "try_poll_lease",
                POLL_LEASE
                    .key(self.keys.poll_lease(reference))
                    .arg(millis(interval)),
            )
            .await?;
        Ok(match u64::try_from(remaining) {
            Ok(ms) => PollLease::HeldFor(Duration::from_millis(ms)),
            Err(_) => PollLease::Taken,
        })
    }

    async fn claim_due_reconciliations(
        &self,
        limit: usize,
        hold: Duration,
    ) -> Result<Vec<String>, StoreError> {
        self.run(
            "claim_due_reconciliations",
            CLAIM_DUE.key(OPEN_PAYINS).arg(limit).arg(millis(hold)),
        )
        .await
    }

    async fn schedule_reconciliation(
        &self,
        reference: &str,
        after: Duration,
    ) -> Result<(), StoreError> {
        let _: i64 = self
            .run(
                "schedule_reconciliation",
                SCHEDULE
                    .key(OPEN_PAYINS)
                    .arg(millis(after))
                    .arg(reference)
                    .arg("XX"),
            )
            .await?;
        Ok(())
    }

    async fn unschedule_reconciliation(&self, reference: &str) -> Result<(), StoreError> {
        let _: i64 = self
            .query(
                "unschedule_reconciliation",
                redis::cmd("ZREM").arg(OPEN_PAYINS).arg(reference),
            )
            .await?;
        Ok(())
    }

    async fn mark_refund_sent(
        &self,
        reference: &str,
        holder: &str,
    ) -> Result<Option<Claim>, StoreError> {
        let call = ScriptCall::new(&MARK_REFUND_SENT)
            .key(self.keys.payin(reference))
            .arg(holder);
        let (marked, acknowledged): (i64, bool) = self.run_claim("mark_refund_sent", call).await?;
        let mark = (marked >= 0).then(|| Claim::from_script(marked));
        // Held (new or already): a provider call may follow, so the replicas must have it.
        if mark.is_some_and(Claim::is_held) && !acknowledged {
            return Err(self.unacknowledged());
        }
        Ok(mark)
    }

    /// A write, not a PING: a demoted primary or a read-only replica answers PING, and
    /// would take no claim (contract §10).
    async fn check_writable(&self) -> Result<(), StoreError> {
        let _: i64 = self
            .run("ready", &READY.key(self.keys.readiness(&self.replica)))
            .await?;
        Ok(())
    }
}

impl RedisStore {
    /// SAVE_PAYIN's keys and arguments, for `script` (which may add its own after them).
    fn save_payin_call<'s>(
        &self,
        script: &'s redis::Script,
        payin: &Payin,
        expected_version: u64,
        options: SaveOptions,
        data: Vec<u8>,
    ) -> redis::ScriptInvocation<'s> {
        let flag = |b: bool| if b { "1" } else { "0" };
        let mut call = script.key(self.keys.payin(&payin.reference));
        call.key(
            self.keys
                .provider_index(&payin.provider, &payin.provider_reference),
        )
        .key(OPEN_PAYINS)
        .key(self.keys.reference_claim(&payin.reference))
        .arg(expected_version)
        .arg(payin.version)
        .arg(data)
        .arg(millis(options.ttl))
        .arg(&payin.reference)
        .arg(flag(!payin.provider_reference.is_empty()))
        .arg(flag(payin.status.is_terminal()))
        .arg(flag(options.announce))
        .arg(millis(options.reconcile_after))
        .arg(CHANGES_CHANNEL);
        call
    }
}
