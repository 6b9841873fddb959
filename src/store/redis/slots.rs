//! What takes several steps on a Redis Cluster, where a script may touch one slot only:
//! the reference claim after its record, a payin's index and schedule around the payin, and
//! the replicas' acknowledgement of a claim (contract §10).

use super::connection::Link;
use super::keys::OPEN_PAYINS;
use super::scripts::*;
use super::{CHANGES_CHANNEL, RedisStore, millis};
use crate::domain::Payin;
use crate::store::{
    Acquired, Claim, IdempotencyScope, ReferenceClaim, SaveOptions, Store, StoreError,
};

/// How long a claim waits for its replicas' acknowledgement (contract §10).
const WAIT_FOR_REPLICAS_MS: u64 = 1000;

impl RedisStore {
    /// After BEGIN gave the record to this attempt: on a cluster, the reference claim in its
    /// own slot; with replicas required, their acknowledgement of both.
    pub(super) async fn claim_and_replicate(
        &self,
        scope: IdempotencyScope<'_>,
        claim: Option<ReferenceClaim<'_>>,
        acquired: &mut Acquired,
    ) -> Result<(), StoreError> {
        self.replicated(&self.keys.record(scope)).await?;
        if let Some(claim) = claim.filter(|_| self.keys.tagged()) {
            let claim_key = self.keys.reference_claim(claim.reference);
            let claimed: i64 = self
                .run(
                    "claim_reference",
                    CLAIM_REFERENCE
                        .key(&claim_key)
                        .arg(scope.key)
                        .arg(millis(claim.ttl)),
                )
                .await?;
            acquired.reference = Some(Claim::from_script(claimed));
            self.replicated(&claim_key).await?;
        }
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
        if saved == 1 && terminal {
            self.unschedule_reconciliation(&payin.reference).await?;
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

    /// Waits until `wait_replicas` replicas hold what was just written to `key`, so that a
    /// failover cannot forget it (contract §10). On one Redis (or the primary the sentinels
    /// name) WAIT covers every earlier write of the connection, hence this one; on a cluster
    /// it goes to the primary of `key`'s slot, over the connection that wrote it.
    pub(super) async fn replicated(&self, key: &str) -> Result<(), StoreError> {
        use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
        if self.wait_replicas == 0 {
            return Ok(());
        }
        let mut wait = redis::cmd("WAIT");
        wait.arg(self.wait_replicas).arg(WAIT_FOR_REPLICAS_MS);
        let acknowledged: i64 = self
            .connection
            .call("wait", |link| async move {
                match link {
                    Link::Single(mut c) => wait.query_async(&mut c).await,
                    Link::Cluster(mut c) => {
                        let primary = SingleNodeRoutingInfo::SpecificNode(Route::with_key(
                            key,
                            SlotAddr::Master,
                        ));
                        let reply = c
                            .route_command(wait, RoutingInfo::SingleNode(primary))
                            .await?;
                        Ok(redis::from_redis_value(reply)?)
                    }
                }
            })
            .await?;
        if acknowledged < i64::from(self.wait_replicas) {
            return Err(StoreError::Unavailable(format!(
                "{acknowledged} of the {} Redis replicas required acknowledged the claim within 1 s",
                self.wait_replicas
            )));
        }
        Ok(())
    }
}
