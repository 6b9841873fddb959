//! One suite, both stores (issue 10): the Redis store (a private redis-server over TCP) and
//! the in-process store must keep the same contract, since the service's safety rests on
//! it whichever runs: compare-and-set of payins, the provider-reference index per
//! provider, announcements, refund-sent marks, poll leases, the reconciler's schedule and
//! idempotency records.

mod finishing;

use crate::common::*;
use chrono::Utc;
use payments_gateway::config::RedisConfig;
use payments_gateway::domain::{
    ConfirmationStatus, Payin, PayinStatus, PhoneNumber, ProviderPayin,
};
use payments_gateway::store::memory::MemoryStore;
use payments_gateway::store::redis::RedisStore;
use payments_gateway::store::{
    Begin, ChangeNotice, Claim, IdempotencyScope, PollLease, ReferenceClaim, SaveOptions, Store,
    StoredOutcome,
};
use std::sync::Arc;
use std::time::Duration;

fn observed(
    provider: &'static str,
    provider_reference: &str,
    status: PayinStatus,
) -> ProviderPayin {
    ProviderPayin {
        provider,
        reference: None,
        provider_reference: provider_reference.into(),
        status,
        provider_status: format!("{status:?}").to_lowercase(),
        confirmation_required: false,
        confirmation_status: ConfirmationStatus::None,
        payment_url: String::new(),
        customer_name: "Awa".into(),
        customer_phone: PhoneNumber::from_provider("+2250700000042"),
        amount: 300,
        fee: 0,
        charged_amount: 0,
        currency: "XOF".into(),
        created_at: None,
        transaction: None,
        failure: None,
        next_action: None,
    }
}

fn options(announce: bool) -> SaveOptions {
    SaveOptions {
        announce,
        ttl: Duration::from_secs(60),
        reconcile_after: Duration::from_millis(200),
    }
}

async fn save(store: &Arc<dyn Store>, payin: &mut Payin, announce: bool) -> bool {
    let expected = payin.version;
    payin.version += 1;
    let saved = store
        .save_payin(payin, expected, options(announce))
        .await
        .unwrap();
    if !saved {
        payin.version -= 1;
    }
    saved
}

async fn payins_are_compare_and_set_indexed_per_provider_and_announced(store: Arc<dyn Store>) {
    let mut changes = store.changes();
    // Redis's change feed subscribes in the background.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let now = Utc::now();
    let mut a = Payin::first_seen(
        "order-a",
        "CI",
        "",
        observed("novasend", "x_1", PayinStatus::Pending),
        now,
    );
    assert!(save(&store, &mut a, false).await);
    let mut stale = a.clone();
    stale.version = 0;
    assert!(
        !save(&store, &mut stale, false).await,
        "a writer that read nothing loses"
    );
    assert_eq!(store.load_payin("order-a").await.unwrap(), Some(a.clone()));
    // The same provider reference under another provider is another payin's.
    let mut b = Payin::first_seen(
        "order-b",
        "CI",
        "",
        observed("hub2", "x_1", PayinStatus::Pending),
        now,
    );
    assert!(save(&store, &mut b, true).await);
    assert_eq!(
        store
            .reference_for_provider("novasend", "x_1")
            .await
            .unwrap()
            .as_deref(),
        Some("order-a")
    );
    assert_eq!(
        store
            .reference_for_provider("hub2", "x_1")
            .await
            .unwrap()
            .as_deref(),
        Some("order-b")
    );
    assert_eq!(
        store.reference_for_provider("other", "x_1").await.unwrap(),
        None
    );
    // Only the announced save reaches the feed (a resync, when the feed (re)subscribes,
    // tells watchers to re-read and says nothing of a payin).
    let mut announced = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while let Ok(Ok(notice)) = tokio::time::timeout_at(deadline, changes.recv()).await {
        if let ChangeNotice::Changed(payin) = notice {
            announced.push(payin.reference.clone());
        }
    }
    assert_eq!(announced, ["order-b"]);
}

async fn refund_marks_and_poll_leases(store: Arc<dyn Store>) {
    assert_eq!(
        store.mark_refund_sent("order-none", "k1").await.unwrap(),
        None
    );
    let mut payin = Payin::first_seen(
        "order-m",
        "CI",
        "",
        observed("novasend", "m_1", PayinStatus::Succeeded),
        Utc::now(),
    );
    assert!(save(&store, &mut payin, false).await);
    assert_eq!(
        store.mark_refund_sent("order-m", "k1").await.unwrap(),
        Some(Claim::New)
    );
    assert_eq!(
        store.mark_refund_sent("order-m", "k1").await.unwrap(),
        Some(Claim::AlreadyHeld)
    );
    assert_eq!(
        store.mark_refund_sent("order-m", "k2").await.unwrap(),
        Some(Claim::TakenByOther)
    );
    // A later save of the payin keeps the mark.
    assert!(save(&store, &mut payin, false).await);
    assert_eq!(
        store.mark_refund_sent("order-m", "k2").await.unwrap(),
        Some(Claim::TakenByOther)
    );

    let interval = Duration::from_millis(300);
    assert_eq!(
        store.try_poll_lease("order-m", interval).await.unwrap(),
        PollLease::Taken
    );
    match store.try_poll_lease("order-m", interval).await.unwrap() {
        PollLease::HeldFor(left) => assert!(left <= interval, "{left:?}"),
        PollLease::Taken => panic!("a lease runs for its interval"),
    }
    tokio::time::sleep(interval + Duration::from_millis(50)).await;
    assert_eq!(
        store.try_poll_lease("order-m", interval).await.unwrap(),
        PollLease::Taken
    );
}

async fn the_reconciler_s_schedule_follows_open_payins(store: Arc<dyn Store>) {
    let mut open = Payin::first_seen(
        "order-open",
        "CI",
        "",
        observed("novasend", "o_1", PayinStatus::Pending),
        Utc::now(),
    );
    assert!(save(&store, &mut open, false).await);
    let hold = Duration::from_secs(30);
    assert!(
        store
            .claim_due_reconciliations(10, hold)
            .await
            .unwrap()
            .is_empty(),
        "not due yet"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        store.claim_due_reconciliations(10, hold).await.unwrap(),
        ["order-open"]
    );
    assert!(
        store
            .claim_due_reconciliations(10, hold)
            .await
            .unwrap()
            .is_empty(),
        "held"
    );
    store
        .schedule_reconciliation("order-open", Duration::ZERO)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        store.claim_due_reconciliations(10, hold).await.unwrap(),
        ["order-open"]
    );
    // Terminal: off the schedule for good.
    open.status = PayinStatus::Succeeded;
    assert!(save(&store, &mut open, false).await);
    store
        .schedule_reconciliation("order-open", Duration::ZERO)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(
        store
            .claim_due_reconciliations(10, hold)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn idempotency_records_replay_refuse_and_resume(store: Arc<dyn Store>) {
    let scope = IdempotencyScope {
        operation: "create",
        key: "contract-key",
    };
    let (lease, ttl) = (Duration::from_secs(5), Duration::from_secs(60));
    let Begin::Acquired(first) = store.begin(scope, "fp", lease, ttl, None).await.unwrap() else {
        panic!("a new key is acquired");
    };
    assert!(!first.resumed);
    assert_eq!(
        store.begin(scope, "other", lease, ttl, None).await.unwrap(),
        Begin::Conflict
    );
    assert!(store.release(scope, &first.owner).await.unwrap());
    let Begin::Acquired(second) = store.begin(scope, "fp", lease, ttl, None).await.unwrap() else {
        panic!("a released record is taken again");
    };
    assert!(
        second.resumed,
        "after a transient outcome, the work reconciles first"
    );
    assert!(
        !store
            .finish(scope, &first.owner, &outcome(), ttl)
            .await
            .unwrap(),
        "not the owner"
    );
    assert!(
        store
            .finish(scope, &second.owner, &outcome(), ttl)
            .await
            .unwrap()
    );
    assert_eq!(
        store.begin(scope, "fp", lease, ttl, None).await.unwrap(),
        Begin::Replay(outcome())
    );
    // A finished record is no one's: not its last owner's, not an empty name's.
    for owner in [second.owner.as_str(), ""] {
        assert!(
            !store.renew(scope, owner, lease).await.unwrap(),
            "{owner:?}"
        );
        assert!(!store.release(scope, owner).await.unwrap(), "{owner:?}");
        assert!(!store.forget(scope, owner).await.unwrap(), "{owner:?}");
        let other = StoredOutcome {
            body: b"another answer".to_vec(),
            ..outcome()
        };
        assert!(
            !store.finish(scope, owner, &other, ttl).await.unwrap(),
            "{owner:?}"
        );
    }
    assert_eq!(
        store.begin(scope, "fp", lease, ttl, None).await.unwrap(),
        Begin::Replay(outcome()),
        "the first answer stands"
    );
    // Forgotten (an invalid request): no trace, the key is new again.
    let other = IdempotencyScope {
        operation: "refund",
        key: "contract-key",
    };
    let Begin::Acquired(third) = store.begin(other, "fp", lease, ttl, None).await.unwrap() else {
        panic!("operations keep apart");
    };
    assert!(store.forget(other, &third.owner).await.unwrap());
    let Begin::Acquired(fourth) = store.begin(other, "fp2", lease, ttl, None).await.unwrap() else {
        panic!("a forgotten record leaves nothing");
    };
    assert!(!fourth.resumed);
}

fn outcome() -> StoredOutcome {
    StoredOutcome {
        code: 0,
        message: String::new(),
        body: b"answer".to_vec(),
    }
}

async fn a_dropped_payin_leaves_nothing_and_records_keep_their_provider(store: Arc<dyn Store>) {
    let mut orphan = Payin::first_seen(
        "order-orphan",
        "CI",
        "",
        observed("hub2", "pi_9", PayinStatus::Pending),
        Utc::now(),
    );
    assert!(save(&store, &mut orphan, false).await);
    let mut stale = orphan.clone();
    stale.version += 7;
    store.drop_payin(&stale).await.unwrap();
    assert!(
        store.load_payin("order-orphan").await.unwrap().is_some(),
        "another version stays"
    );
    store.drop_payin(&orphan).await.unwrap();
    assert_eq!(store.load_payin("order-orphan").await.unwrap(), None);
    assert_eq!(
        store.reference_for_provider("hub2", "pi_9").await.unwrap(),
        None
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        store
            .claim_due_reconciliations(10, Duration::from_secs(30))
            .await
            .unwrap()
            .is_empty()
    );

    let scope = IdempotencyScope {
        operation: "create",
        key: "routed-key",
    };
    assert_eq!(store.recorded_provider(scope, "fp").await.unwrap(), None);
    let claim = ReferenceClaim {
        reference: "order-routed",
        ttl: Duration::from_secs(60),
        provider: "hub2",
    };
    let begun = store
        .begin(
            scope,
            "fp",
            Duration::from_secs(5),
            Duration::from_secs(60),
            Some(claim),
        )
        .await
        .unwrap();
    assert!(matches!(begun, Begin::Acquired(ref a) if a.provider.as_deref() == Some("hub2")));
    assert_eq!(
        store
            .recorded_provider(scope, "fp")
            .await
            .unwrap()
            .as_deref(),
        Some("hub2")
    );
    assert_eq!(
        store
            .recorded_provider(scope, "another request")
            .await
            .unwrap(),
        None
    );
}

/// Each part on an empty store of its kind.
pub(crate) async fn the_whole_contract(empty: impl Fn() -> Arc<dyn Store>) {
    payins_are_compare_and_set_indexed_per_provider_and_announced(empty()).await;
    refund_marks_and_poll_leases(empty()).await;
    the_reconciler_s_schedule_follows_open_payins(empty()).await;
    idempotency_records_replay_refuse_and_resume(empty()).await;
    a_dropped_payin_leaves_nothing_and_records_keep_their_provider(empty()).await;
    finishing::a_save_finishes_the_record_it_answers_only_when_it_saves_for_its_owner(empty())
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_store_keeps_the_store_contract() {
    let redis = RedisServer::start();
    the_whole_contract(|| {
        redis.command(&["FLUSHALL"]);
        Arc::new(RedisStore::new(&RedisConfig::single(&redis.url())).unwrap())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_process_store_keeps_the_store_contract() {
    the_whole_contract(|| Arc::new(MemoryStore::new())).await;
}
