//! Contract §3, "one attempt at a time, really", on both stores: a running attempt keeps its
//! record by renewing it; one whose lease ran out is taken over, and from then on it can
//! neither pass the fence before a provider call nor record a result.

use crate::common::*;
use payments_gateway::config::RedisConfig;
use payments_gateway::store::attempt::Attempt;
use payments_gateway::store::memory::MemoryStore;
use payments_gateway::store::redis::RedisStore;
use payments_gateway::store::{
    Acquired, Begin, Claim, IdempotencyScope, ReferenceClaim, Store, StoreError, StoredOutcome,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

const SCOPE: IdempotencyScope<'static> = IdempotencyScope {
    operation: "create",
    key: "attempt-key",
};
const TTL: Duration = Duration::from_secs(60);

fn outcome(body: &[u8]) -> StoredOutcome {
    StoredOutcome {
        code: 0,
        message: String::new(),
        body: body.to_vec(),
    }
}

async fn begin(store: &Arc<dyn Store>, lease: Duration) -> Begin {
    store.begin(SCOPE, "fp", lease, TTL, None).await.unwrap()
}

/// An attempt's work in progress, renewing its lease until dropped (its replica died).
struct Working(tokio::task::JoinHandle<()>);

impl Drop for Working {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Opens the record and holds it as the runner does: renewals of `lease` while it works
/// (until the returned guard is dropped), fences of `call`.
async fn first_attempt(
    store: &Arc<dyn Store>,
    lease: Duration,
    call: Duration,
) -> (Attempt, Working) {
    let sent = Instant::now();
    let Begin::Acquired(acquired) = begin(store, lease).await else {
        panic!("the first begin owns the record");
    };
    let attempt = Attempt::hold(
        store.clone(),
        SCOPE,
        acquired,
        (lease, call),
        sent + lease,
        TTL,
    );
    let renewing = attempt.clone();
    let working = tokio::spawn(async move {
        renewing.renewing(std::future::pending::<()>()).await;
    });
    (attempt, Working(working))
}

/// A live attempt (renewed by its keep-alive) is never taken over, however long it runs.
async fn a_renewed_attempt_keeps_its_record(store: Arc<dyn Store>) {
    let lease = Duration::from_millis(400);
    let (attempt, keep_alive) = first_attempt(&store, lease, lease).await;
    for _ in 0..6 {
        tokio::time::sleep(lease / 2).await;
        assert_eq!(begin(&store, lease).await, Begin::InFlight);
    }
    attempt.fence().await.unwrap();
    drop(keep_alive);
    assert!(
        store
            .finish(SCOPE, attempt.owner(), &outcome(b"first"), TTL)
            .await
            .unwrap()
    );
    assert_eq!(begin(&store, lease).await, Begin::Replay(outcome(b"first")));
}

/// An attempt whose keep-alive stopped (its replica died) is taken over after its lease; it
/// then fails its fence and cannot record anything, and the new owner's answer stands.
async fn a_lapsed_attempt_is_fenced_off(store: Arc<dyn Store>) {
    let lease = Duration::from_millis(300);
    let (stale, keep_alive) = first_attempt(&store, lease, lease).await;
    drop(keep_alive);
    tokio::time::sleep(lease + Duration::from_millis(100)).await;
    let Begin::Acquired(Acquired {
        owner: new_owner,
        resumed: true,
        ..
    }) = begin(&store, lease).await
    else {
        panic!("a lapsed record is taken over, as resumed");
    };
    assert!(matches!(stale.fence().await, Err(StoreError::LeaseLost)));
    assert!(!store.renew(SCOPE, stale.owner(), lease).await.unwrap());
    assert!(
        !store
            .finish(SCOPE, stale.owner(), &outcome(b"stale"), TTL)
            .await
            .unwrap()
    );
    assert!(!store.release(SCOPE, stale.owner()).await.unwrap());
    assert!(
        store
            .finish(SCOPE, &new_owner, &outcome(b"new"), TTL)
            .await
            .unwrap()
    );
    assert_eq!(begin(&store, lease).await, Begin::Replay(outcome(b"new")));
}

/// The fence holds the record over the whole provider call that follows, so an attempt that
/// dies in the middle of that call is not taken over while its request may still be in
/// flight; after the call's bound, it is.
async fn the_fence_holds_the_record_over_the_call(store: Arc<dyn Store>) {
    let (lease, call) = (Duration::from_millis(300), Duration::from_millis(1200));
    let (attempt, keep_alive) = first_attempt(&store, lease, call).await;
    attempt.fence().await.unwrap();
    let fenced = Instant::now();
    drop(keep_alive); // the replica dies in the middle of its provider call
    tokio::time::sleep(lease * 2).await;
    assert_eq!(
        begin(&store, lease).await,
        Begin::InFlight,
        "taken over mid-call"
    );
    // The fence asked for the call and a quarter of it more (its round trip's allowance).
    let held_until = fenced + call + call / 4;
    tokio::time::sleep(
        (held_until + Duration::from_millis(100)).saturating_duration_since(Instant::now()),
    )
    .await;
    assert!(matches!(
        begin(&store, lease).await,
        Begin::Acquired(Acquired { resumed: true, .. })
    ));
}

/// The reference a create claims goes with its record, in the same step: taken only by the
/// call that gets the record, kept for the same key, refused to another key.
async fn the_reference_is_claimed_only_with_the_record(store: Arc<dyn Store>) {
    let lease = Duration::from_secs(5);
    let claim = Some(ReferenceClaim {
        reference: "order-claimed",
        ttl: TTL,
        provider: "novasend",
    });
    let other = IdempotencyScope {
        operation: "create",
        key: "another-key",
    };
    let begin_with = |scope, fingerprint| store.begin(scope, fingerprint, lease, TTL, claim);
    let Begin::Acquired(first) = begin_with(SCOPE, "fp").await.unwrap() else {
        panic!("the first begin owns the record");
    };
    assert_eq!(first.reference, Some(Claim::New));
    // Calls that do not get the record claim nothing.
    assert_eq!(begin_with(SCOPE, "fp").await.unwrap(), Begin::InFlight);
    assert_eq!(
        begin_with(SCOPE, "other-fp").await.unwrap(),
        Begin::Conflict
    );
    assert!(store.release(SCOPE, &first.owner).await.unwrap());
    let Begin::Acquired(again) = begin_with(SCOPE, "fp").await.unwrap() else {
        panic!("a released record is taken again");
    };
    assert_eq!(again.reference, Some(Claim::AlreadyHeld));
    let Begin::Acquired(stranger) = begin_with(other, "fp").await.unwrap() else {
        panic!("another key opens its own record");
    };
    assert_eq!(stranger.reference, Some(Claim::TakenByOther));
    store
        .unclaim_reference("order-claimed", SCOPE.key)
        .await
        .unwrap();
    assert!(store.release(other, &stranger.owner).await.unwrap());
    let Begin::Acquired(freed) = begin_with(other, "fp").await.unwrap() else {
        panic!("the released record is taken again");
    };
    assert_eq!(freed.reference, Some(Claim::New));
    // A begin that asks for no claim reports none.
    assert!(store.release(other, &freed.owner).await.unwrap());
    let Begin::Acquired(plain) = store.begin(other, "fp", lease, TTL, None).await.unwrap() else {
        panic!("the released record is taken again");
    };
    assert_eq!(plain.reference, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_on_redis() {
    let redis = RedisServer::start();
    let store: Arc<dyn Store> =
        Arc::new(RedisStore::new(&RedisConfig::single(&redis.url())).unwrap());
    a_renewed_attempt_keeps_its_record(store).await;
    redis.command(&["FLUSHALL"]);
    let store: Arc<dyn Store> =
        Arc::new(RedisStore::new(&RedisConfig::single(&redis.url())).unwrap());
    a_lapsed_attempt_is_fenced_off(store.clone()).await;
    redis.command(&["FLUSHALL"]);
    the_fence_holds_the_record_over_the_call(store.clone()).await;
    redis.command(&["FLUSHALL"]);
    the_reference_is_claimed_only_with_the_record(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_in_process() {
    a_renewed_attempt_keeps_its_record(Arc::new(MemoryStore::new())).await;
    a_lapsed_attempt_is_fenced_off(Arc::new(MemoryStore::new())).await;
    the_fence_holds_the_record_over_the_call(Arc::new(MemoryStore::new())).await;
    the_reference_is_claimed_only_with_the_record(Arc::new(MemoryStore::new())).await;
}

/// A duplicate arriving while a slow create outlives several leases waits for it and gets
/// its answer; Novasend sees one POST.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_slower_than_its_lease_is_not_taken_over() {
    use wiremock::matchers::method;
    use wiremock::{Mock, ResponseTemplate};
    let mut settings = test_settings();
    settings.attempt_lease = Duration::from_millis(500);
    settings.upstream_timeout = Duration::from_secs(5);
    let h = Harness::with_settings(settings).await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(payin_2026("order-slow", "processing", "none"))
                .set_delay(Duration::from_secs(2)),
        )
        .mount(&h.novasend)
        .await;
    let calls = (0..2).map(|i| {
        let mut client = h.client.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1200 * i)).await;
            client
                .create_payin(create_request("order-slow", "key-slow"))
                .await
        })
    });
    let answers = all_finished(calls).await;
    let first = answers[0].as_ref().unwrap().get_ref();
    let second = answers[1].as_ref().unwrap().get_ref();
    assert_eq!(first, second);
    assert_eq!(h.upstream("POST").await.len(), 1);
}
