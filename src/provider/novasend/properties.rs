//! The status machine under any sequence of Novasend observations, in either response shape:
//! what is cached (and so what streams report) never moves backwards — status, then
//! confirmation, then transaction — and a terminal status is never left.

use super::wire::parse_payin;
use crate::domain::{Applied, Payin, PayinStatus};
use chrono::Utc;
use proptest::prelude::*;
use serde_json::{Value, json};

/// One Novasend answer about payin `order-1`, in the 2025 or the 2026 shape.
fn observation() -> impl Strategy<Value = Value> {
    let status = prop::sample::select(vec![
        "processing",
        "processed",
        "expired",
        "PROCESSED",
        "new",
    ]);
    let confirmation = prop::option::of(prop::sample::select(vec![
        "none", "pending", "accepted", "declined", "expired", "later",
    ]));
    let transaction = prop::option::of(prop::option::of(prop::sample::select(vec![
        "pending",
        "completed",
        "failed",
        "reversed",
    ])));
    let failure = prop::sample::select(vec![json!(null), json!({}), json!({"code": "E1"})]);
    (any::<bool>(), status, any::<bool>(), confirmation, transaction, failure).prop_map(
        |(shape_2026, status, required, confirmation, transaction, failure)| {
            let transaction = match transaction {
                None => json!(null),
                Some(None) => json!({}),
                Some(Some(s)) => json!({"reference": "tr_9", "status": s, "amount": "300.00"}),
            };
            let mut body = json!({
                "status": status,
                "confirmationRequired": required,
                "confirmationStatus": confirmation,
                "amount": 300,
                "transaction": transaction,
                "failure": failure,
            });
            let ids = if shape_2026 {
                json!({"id": "pr_1", "reference": "order-1", "customer": {"name": "Awa"}})
            } else {
                json!({"reference": "tr_1", "customerReference": "order-1", "phoneNumber": "+2250700000042"})
            };
            for (k, v) in ids.as_object().unwrap() {
                body[k] = v.clone();
            }
            body
        },
    )
}

proptest! {
    #[test]
    fn cached_progress_never_moves_backwards(observations in prop::collection::vec(observation(), 1..12)) {
        let now = Utc::now();
        let mut parsed = observations
            .iter()
            .map(|body| parse_payin(body.to_string().as_bytes()).expect("a well-formed answer parses"));
        let mut payin = Payin::first_seen("order-1", "CI", "", parsed.next().unwrap(), now);
        for observed in parsed {
            let before = payin.progress();
            let observed_status = observed.status;
            let applied = payin.apply(observed, now);
            let after = payin.progress();
            prop_assert!(after == before || before.may_become(&after), "{before:?} -> {after:?}");
            if before.status.is_terminal() {
                prop_assert_eq!(after.status, before.status);
            }
            match applied {
                Applied::Changed { .. } => prop_assert_eq!(payin.status, observed_status),
                Applied::Contradicted { .. } | Applied::Unchanged => prop_assert_eq!(after, before),
            }
            // Every status we report is one the provider said.
            prop_assert!(payin.status != PayinStatus::Succeeded || payin.transaction.is_some());
        }
    }
}
