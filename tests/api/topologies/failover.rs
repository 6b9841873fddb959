//! The service through a failover under load (contract §10): clients keep creating payins,
//! each retried with its idempotency key until it succeeds, while a primary is SIGKILLed;
//! every payin is created upstream exactly once, the service serves again within 10 s of the
//! promotion, and a stream opened before the kill hears the next change after it.
//!
//! `wait_replicas` is 0 here: on loopback a write's reply and its replication leave in the
//! same event-loop turn, so a SIGKILL cannot lose a claim the service already acted on, and
//! exactly-once holds without WAIT (what WAIT adds is fail_closed.rs's business).

use super::*;
use crate::common::create_request;
use payments_gateway::proto::{self as pb, StreamPayinUpdatesRequest};
use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use tokio::task::block_in_place;
use tonic::Code;

/// Concurrent clients, and how many payins each creates at most.
const CLIENTS: usize = 6;
const PER_CLIENT: usize = 40;
/// A create that does not answer within this counts as failed and is retried.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// A payin not created within this fails the test (the failover takes a few seconds).
const CREATE_LIMIT: Duration = Duration::from_secs(30);
/// The contract's bound: serving again within 10 s of the new primary.
const SERVED_AGAIN: Duration = Duration::from_secs(10);

/// Every create attempt: when it ended and whether it succeeded.
#[derive(Default)]
struct Log {
    attempts: Vec<(Instant, bool)>,
    created: Vec<String>,
}

/// One client: creates `fo-<client>-<n>` in turn, retrying each with the same key, until
/// told to stop.
async fn client_loop(
    app_client: pb::payments_service_client::PaymentsServiceClient<tonic::transport::Channel>,
    id: usize,
    log: Arc<Mutex<Log>>,
    stop: Arc<AtomicBool>,
) {
    let mut client = app_client;
    for n in 0..PER_CLIENT {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let reference = format!("fo-{id}-{n}");
        let key = format!("key-{reference}");
        let deadline = Instant::now() + CREATE_LIMIT;
        loop {
            let call = client.create_payin(create_request(&reference, &key));
            let result = tokio::time::timeout(ATTEMPT_TIMEOUT, call).await;
            let ok = matches!(result, Ok(Ok(_)));
            log.lock().unwrap().attempts.push((Instant::now(), ok));
            match result {
                Ok(Ok(_)) => break,
                // Fail closed while no primary holds the key: UNAVAILABLE, retried.
                Ok(Err(status)) => assert_eq!(
                    status.code(),
                    Code::Unavailable,
                    "{reference}: only UNAVAILABLE while the primary is away: {status:?}"
                ),
                Err(_) => {}
            }
            assert!(
                Instant::now() < deadline,
                "{reference} not created within {CREATE_LIMIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        log.lock().unwrap().created.push(reference);
    }
}

/// Waits (bounded) until `log` satisfies `done`.
async fn until(what: &str, log: &Mutex<Log>, done: impl Fn(&Log) -> bool) {
    let deadline = Instant::now() + CREATE_LIMIT;
    while !done(&log.lock().unwrap()) {
        assert!(
            Instant::now() < deadline,
            "{what}: not within {CREATE_LIMIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Prints when clients were served again, and checks it against the contract's bound.
fn report(label: &str, log: &Log, lost_at: Instant, promoted_at: Instant) {
    let last_failure = log
        .attempts
        .iter()
        .filter(|(_, ok)| !ok)
        .map(|(at, _)| *at)
        .max();
    match last_failure {
        Some(failed_at) => {
            let served_at = log
                .attempts
                .iter()
                .filter(|(at, ok)| *ok && *at > failed_at)
                .map(|(at, _)| *at)
                .min()
                .expect("a create succeeded after the last failure");
            eprintln!(
                "{label}: primary killed → last failed create {:?}, first create served after it {:?} (promotion observed → served: {:?}); {} of {} attempts failed",
                failed_at - lost_at,
                served_at - lost_at,
                served_at.saturating_duration_since(promoted_at),
                log.attempts.iter().filter(|(_, ok)| !ok).count(),
                log.attempts.len(),
            );
            assert!(
                served_at.saturating_duration_since(promoted_at) <= SERVED_AGAIN,
                "served again more than {SERVED_AGAIN:?} after the promotion"
            );
        }
        None => eprintln!(
            "{label}: no create failed across the failover ({} attempts)",
            log.attempts.len()
        ),
    }
}

/// Runs the load over `app`, calls `lose_primary` (which kills a primary and returns when)
/// then `promoted` (which waits for a new one), and checks and prints what clients saw.
async fn failover_under_load(
    label: &str,
    app: &TestApp,
    novasend: &MockServer,
    lose_primary: impl FnOnce() -> Instant,
    promoted: impl FnOnce(),
) {
    let mut client = app.client().await;
    // A stream opened before the failover, on a payin created before it.
    client
        .create_payin(create_request("fo-stream", "key-fo-stream"))
        .await
        .expect("the first create");
    let mut stream = client
        .stream_payin_updates(StreamPayinUpdatesRequest {
            reference: "fo-stream".into(),
        })
        .await
        .expect("the stream opens")
        .into_inner();
    let snapshot = tokio::time::timeout(SERVED_AGAIN, stream.message()).await;
    assert!(matches!(snapshot, Ok(Ok(Some(_)))), "{snapshot:?}");

    let log = Arc::new(Mutex::new(Log::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|id| tokio::spawn(client_loop(client.clone(), id, log.clone(), stop.clone())))
        .collect();
    until("a first round of creates", &log, |l| {
        l.created.len() >= CLIENTS
    })
    .await;

    let lost_at = block_in_place(lose_primary);
    block_in_place(promoted);
    let promoted_at = Instant::now();
    eprintln!(
        "{label}: primary killed → promotion observed in {:?}",
        promoted_at - lost_at
    );
    // Two more rounds after the promotion, so every client went through the new primary.
    let before = log.lock().unwrap().created.len();
    until("creates after the promotion", &log, |l| {
        l.created.len() >= before + 2 * CLIENTS
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    crate::common::all_finished(tasks).await;

    let created = {
        let log = log.lock().unwrap();
        report(label, &log, lost_at, promoted_at);
        log.created.clone()
    };
    let posts = posts_per_reference(novasend).await;
    for reference in created.iter().chain(["fo-stream".to_owned()].iter()) {
        assert_eq!(
            posts.get(reference),
            Some(&1),
            "{reference} created upstream exactly once"
        );
    }

    // The stream hears the next change, announced after the failover: Novasend now reports
    // the payin succeeded, and a webhook makes the service look.
    let mut done = payin_2026("fo-stream", "processed", "accepted");
    done["transaction"] = crate::common::transaction("completed");
    Mock::given(method("GET"))
        .and(path("/v1/payin/fo-stream"))
        .respond_with(ResponseTemplate::new(200).set_body_json(done))
        .with_priority(1)
        .mount(novasend)
        .await;
    let webhook = serde_json::json!({"event": "payin.completed", "data": {"id": "pr_fo-stream", "reference": "fo-stream"}}).to_string();
    let deadline = Instant::now() + SERVED_AGAIN;
    while app.post_webhook(&webhook, None).await != 200 {
        assert!(
            Instant::now() < deadline,
            "the webhook was not taken after the failover"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let deadline = tokio::time::Instant::now() + SERVED_AGAIN;
    loop {
        let update = tokio::time::timeout_at(deadline, stream.message())
            .await
            .expect("the stream delivers the change after the failover")
            .expect("the stream stays open across the failover")
            .expect("the stream ends only after the terminal update");
        if update.payin.as_ref().unwrap().status() == pb::PayinStatus::Succeeded {
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_failover_under_load_creates_each_payin_once() {
    // Both steps need the cluster, one to kill a node: shared through a RefCell.
    let cluster = RefCell::new(RedisCluster::start());
    let novasend = novasend().await;
    let config = cluster_config(&cluster.borrow(), 0);
    let app = spawn_app(&novasend, config).await;
    let victim = Cell::new(0);
    failover_under_load(
        "cluster",
        &app,
        &novasend,
        || {
            // The primary holding the most of what the service wrote so far.
            let mut cluster = cluster.borrow_mut();
            let keys = cluster.keys_per_primary();
            let port = *keys.iter().max_by_key(|(_, n)| **n).unwrap().0;
            cluster.kill(port);
            victim.set(port);
            cluster.killed_at(port)
        },
        || {
            cluster.borrow().wait_for_promotion(victim.get());
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_failover_under_load_creates_each_payin_once() {
    let sentinels = RefCell::new(RedisSentinels::start());
    let novasend = novasend().await;
    let config = sentinel_config(&sentinels.borrow(), 0);
    let app = spawn_app(&novasend, config).await;
    failover_under_load(
        "sentinel",
        &app,
        &novasend,
        || {
            let mut sentinels = sentinels.borrow_mut();
            sentinels.kill_primary();
            sentinels.lost_at()
        },
        || {
            sentinels.borrow().wait_for_new_primary();
        },
    )
    .await;
}
