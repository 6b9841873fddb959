//! The last save of a create finishes its idempotency record in the same step
//! (`save_payin_finishing`): only when the payin is saved, and only for the record's owner.

use super::{observed, options};
use chrono::Utc;
use payments_gateway::domain::{Payin, PayinStatus};
use payments_gateway::store::{Begin, Finish, IdempotencyScope, Store, StoredOutcome};
use std::sync::Arc;
use std::time::Duration;

const LEASE: Duration = Duration::from_secs(5);
const TTL: Duration = Duration::from_secs(60);

fn scope(key: &str) -> IdempotencyScope<'_> {
    IdempotencyScope {
        operation: "create",
        key,
    }
}

async fn owner_of(store: &Arc<dyn Store>, key: &str) -> String {
    match store
        .begin(scope(key), "fp", LEASE, TTL, None)
        .await
        .unwrap()
    {
        Begin::Acquired(acquired) => acquired.owner,
        other => panic!("a new key is acquired, not {other:?}"),
    }
}

fn payin(reference: &str, version: u64) -> Payin {
    let mut payin = Payin::first_seen(
        reference,
        "CI",
        "",
        observed("novasend", &format!("tr_{reference}"), PayinStatus::Pending),
        Utc::now(),
    );
    payin.version = version;
    payin
}

pub(super) async fn a_save_finishes_the_record_it_answers_only_when_it_saves_for_its_owner(
    store: Arc<dyn Store>,
) {
    let answer = StoredOutcome::ok(b"the payin".to_vec());
    let finish = |key, owner| Finish {
        scope: scope(key),
        owner,
        outcome: &answer,
        ttl: TTL,
    };

    // Saved and finished: a retry replays the answer; the payin is there.
    let owner = owner_of(&store, "k-saved").await;
    let first = payin("order-finished", 1);
    let kept = store
        .save_payin_finishing(&first, 0, options(false), finish("k-saved", &owner))
        .await
        .unwrap();
    assert_eq!(kept, Some(true));
    assert_eq!(
        store
            .begin(scope("k-saved"), "fp", LEASE, TTL, None)
            .await
            .unwrap(),
        Begin::Replay(answer.clone())
    );
    assert_eq!(
        store.load_payin("order-finished").await.unwrap(),
        Some(first)
    );

    // Someone wrote the payin first: nothing is written, the record still runs.
    let owner = owner_of(&store, "k-raced").await;
    let stale = payin("order-finished", 1);
    let kept = store
        .save_payin_finishing(&stale, 0, options(false), finish("k-raced", &owner))
        .await
        .unwrap();
    assert_eq!(kept, None);
    assert_eq!(
        store
            .begin(scope("k-raced"), "fp", LEASE, TTL, None)
            .await
            .unwrap(),
        Begin::InFlight
    );

    // The record is no longer the owner's: the payin is kept, the record is not finished.
    let lost = owner_of(&store, "k-lost").await;
    assert!(store.release(scope("k-lost"), &lost).await.unwrap());
    let second = payin("order-finished", 2);
    let kept = store
        .save_payin_finishing(&second, 1, options(false), finish("k-lost", &lost))
        .await
        .unwrap();
    assert_eq!(kept, Some(false));
    assert_eq!(
        store.load_payin("order-finished").await.unwrap(),
        Some(second)
    );
    let Begin::Acquired(taken_over) = store
        .begin(scope("k-lost"), "fp", LEASE, TTL, None)
        .await
        .unwrap()
    else {
        panic!("a record not finished is taken over");
    };
    assert!(taken_over.resumed);
}
