//! Key names. On a Redis Cluster every key one script touches must hash to the same slot
//! (contract §10), so a payin and its reference claim share the reference as their hash tag,
//! and a record its operation and key. On one Redis (or Sentinel) the names stay as they
//! were, so a rolling upgrade keeps every record, claim and payin it finds.

use crate::store::IdempotencyScope;

/// The sorted set of open payins, by when the reconciler should look at them again.
pub const OPEN_PAYINS: &str = "pgw:open-payins";

#[derive(Clone, Copy)]
pub struct Keys {
    tagged: bool,
}

impl Keys {
    pub fn new(tagged: bool) -> Self {
        Self { tagged }
    }

    /// Whether keys are spread over the slots of a cluster: a script then touches one slot.
    pub fn tagged(&self) -> bool {
        self.tagged
    }

    pub fn record(&self, scope: IdempotencyScope<'_>) -> String {
        match self.tagged {
            true => format!("pgw:idem:{{{}:{}}}", scope.operation, scope.key),
            false => format!("pgw:idem:{}:{}", scope.operation, scope.key),
        }
    }

    pub fn payin(&self, reference: &str) -> String {
        self.by_reference("pgw:payin", reference)
    }

    pub fn reference_claim(&self, reference: &str) -> String {
        self.by_reference("pgw:reference", reference)
    }

    pub fn provider_index(&self, provider: &str, provider_reference: &str) -> String {
        format!("pgw:payin-by-provider:{provider}:{provider_reference}")
    }

    pub fn poll_lease(&self, reference: &str) -> String {
        format!("pgw:poll-lease:{reference}")
    }

    /// Written by readiness: a store that cannot take it cannot take a claim either.
    pub fn readiness(&self, replica: &str) -> String {
        format!("pgw:ready:{replica}")
    }

    fn by_reference(&self, prefix: &str, reference: &str) -> String {
        match self.tagged {
            // Never an empty tag (a reference starting with `}`): Redis would hash it all.
            true => format!("{prefix}:{{r:{reference}}}"),
            false => format!("{prefix}:{reference}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payin_and_its_claim_share_a_slot_on_a_cluster_and_keep_their_names_elsewhere() {
        let slot = |key: &str| redis::cluster_routing::Slot::for_key(key);
        let (cluster, single) = (Keys::new(true), Keys::new(false));
        for reference in ["ORD-1", "a{b}c", "}{", "ORD-2"] {
            assert_eq!(
                slot(&cluster.payin(reference)),
                slot(&cluster.reference_claim(reference)),
                "{reference}"
            );
        }
        assert_eq!(single.payin("ORD-1"), "pgw:payin:ORD-1");
        assert_eq!(single.reference_claim("ORD-1"), "pgw:reference:ORD-1");
        let scope = IdempotencyScope {
            operation: "create",
            key: "k",
        };
        assert_eq!(single.record(scope), "pgw:idem:create:k");
        assert_eq!(cluster.record(scope), "pgw:idem:{create:k}");
    }
}
