//! What takes several steps on a Redis Cluster, where a script may touch one slot only:
//! the reference claim after its record, a payin's index and schedule around the payin, and
//! the replicas' acknowledgement of a claim (contract §10).

use super::keys::OPEN_PAYINS;
use super::replicated::ScriptCall;
use super::scripts::*;
use super::{CHANGES_CHANNEL, RedisStore, millis};
use crate::domain::Payin;
use crate::store::{
    Acquired, Claim, IdempotencyScope, ReferenceClaim, SaveOptions, Store, StoreError,
};

impl RedisStore {
    /// After BEGIN gave the record to this attempt, on a cluster: the reference claim, in
    /// its own slot.
    pub(super) async fn claim_in_its_slot(
        &self,
        scope: IdempotencyScope<'_>,
        claim: Option<ReferenceClaim<'_>>,
        acquired: &mut Acquired,
    ) -> Result<(), StoreError> {
        let Some(claim) = claim.filter(|_| self.keys.tagged()) else {
            return Ok(());
        };
        let call = ScriptCall::new(&CLAIM_REFERENCE)
            .key(self.keys.reference_claim(claim.reference))
            .arg(scope.key)
            .arg(millis(claim.ttl));
        let (claimed, acknowledged): (i64, bool) = self.run_claim("claim_reference", call).await?;
        let claimed = Claim::from_script(claimed);
        if claimed.is_held() && !acknowledged {
            return Err(self.unacknowledged());
        }
        acquired.reference = Some(claimed);
        Ok(())
    }

    /// Index and schedule first (harmless without the payin: a lookup finds no payin, the
    /// reconciler drops a reference it cannot read), then the payin, then its unscheduling
    /// once final (a crash before it costs one extra poll).
    pub(super) async fn save_payin_by_slot(
        &self,
        payin: &Payin,
        expected_version: u64,
        options: SaveOptions,
        data: Vec<u8>,
    ) -> Result<bool, StoreError> {
        let terminal = payin.status.is_terminal();
        if !payin.provider_reference.is_empty() {
            let _: () = self
                .query(
                    "index_payin",
                    redis::cmd("SET")
                        .arg(
                            self.keys
                                .provider_index(&payin.provider, &payin.provider_reference),
                        )
                        .arg(&payin.reference)
                        .arg("PX")
                        .arg(millis(options.ttl)),
                )
                .await?;
        }
        if !terminal {
            let _: i64 = self
                .run(
                    "schedule_reconciliation",
                    SCHEDULE
                        .key(OPEN_PAYINS)
                        .arg(millis(options.reconcile_after))
                        .arg(&payin.reference)
                        .arg("NX"),
                )
                .await?;
        }
        let saved: i64 = self
            .run(
                "save_payin",
                SAVE_PAYIN_SLOT
                    .key(self.keys.payin(&payin.reference))
                    .key(self.keys.reference_claim(&payin.reference))
                    .arg(expected_version)
                    .arg(payin.version)
                    .arg(data)
                    .arg(millis(options.ttl))
                    .arg(if options.announce { "1" } else { "0" })
                    .arg(CHANGES_CHANNEL),
            )
            .await?;
        // The payin is saved: a failure here costs one extra poll, and must not turn a saved
        // payin (a refund sent, say) into an error.
        if saved == 1 && terminal {
            if let Err(e) = self.unschedule_reconciliation(&payin.reference).await {
                tracing::warn!(error = %e, "a final payin stays scheduled; the reconciler drops it");
            }
        }
        Ok(saved == 1)
    }

    /// The payin first; its index (while it still names this payin) and schedule after.
    pub(super) async fn drop_payin_by_slot(&self, payin: &Payin) -> Result<(), StoreError> {
        let dropped: i64 = self
            .run(
                "drop_payin",
                DROP_PAYIN_SLOT
                    .key(self.keys.payin(&payin.reference))
                    .arg(payin.version),
            )
            .await?;
        if dropped == 0 {
            return Ok(());
        }
        let _: i64 = self
            .run(
                "unindex_payin",
                UNCLAIM
                    .key(
                        self.keys
                            .provider_index(&payin.provider, &payin.provider_reference),
                    )
                    .arg(&payin.reference),
            )
            .await?;
        self.unschedule_reconciliation(&payin.reference).await
    }
}
