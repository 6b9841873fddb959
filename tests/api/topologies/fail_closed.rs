//! Without a writable primary the service fails closed (contract §10): a demoted primary
//! (READONLY) makes readiness false and CreatePayin UNAVAILABLE without a provider call, until
//! the sentinels name a writable one; with `wait_replicas: 1` and no replica to acknowledge the
//! claims, the same, until the replica is back.

use super::*;
use crate::common::create_request;
use std::time::Instant;
use tokio::task::block_in_place;
use tonic::Code;

/// The contract's bound for serving again after the new primary is available.
const SERVED_AGAIN: Duration = Duration::from_secs(10);

async fn ready(app: &TestApp) -> bool {
    let url = format!("http://{}/readyz", app.http_address);
    let response = reqwest::Client::new().get(url).send().await;
    response.is_ok_and(|r| r.status() == 200)
}

/// Waits (bounded) until readiness says `expected`.
async fn wait_ready(app: &TestApp, expected: bool) {
    let deadline = Instant::now() + SERVED_AGAIN;
    while ready(app).await != expected {
        assert!(
            Instant::now() < deadline,
            "readiness stayed {} for {SERVED_AGAIN:?}",
            !expected
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Creates `reference` with its key, retried while UNAVAILABLE, within `limit`.
async fn create_within(app: &TestApp, reference: &str, limit: Duration) {
    let mut client = app.client().await;
    let deadline = Instant::now() + limit;
    loop {
        let request = create_request(reference, &format!("key-{reference}"));
        match client.create_payin(request).await {
            Ok(_) => return,
            Err(status) => {
                assert_eq!(status.code(), Code::Unavailable, "{status:?}");
                assert!(
                    Instant::now() < deadline,
                    "{reference} not created within {limit:?}: {status:?}"
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A create of `reference` answers UNAVAILABLE and Novasend hears nothing of it.
async fn refused_without_a_provider_call(app: &TestApp, novasend: &MockServer, reference: &str) {
    let mut client = app.client().await;
    let request = create_request(reference, &format!("key-{reference}"));
    let refused = client.create_payin(request).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    let posts = posts_per_reference(novasend).await;
    assert_eq!(
        posts.get(reference),
        None,
        "no provider call for {reference}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demoted_primary_fails_closed_until_the_sentinels_name_a_writable_one() {
    demoted_primary_then_failover(0).await;
}

/// The same with replicas required: claims then go over a connection of their own (their
/// script and WAIT pipelined), which must leave the demoted primary too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_wait_replicas_a_demoted_primary_fails_closed_then_claims_follow_the_failover() {
    demoted_primary_then_failover(1).await;
}

async fn demoted_primary_then_failover(wait_replicas: u32) {
    let mut sentinels = RedisSentinels::start();
    let novasend = novasend().await;
    let app = spawn_app(&novasend, sentinel_config(&sentinels, wait_replicas)).await;
    create_within(&app, "dm-1", SERVED_AGAIN).await;
    wait_ready(&app, true).await;

    // The sentinels keep naming the demoted primary for ~20 s: a window with none writable.
    block_in_place(|| sentinels.demote_primary());
    wait_ready(&app, false).await;
    refused_without_a_provider_call(&app, &novasend, "dm-2").await;

    let promoted = block_in_place(|| {
        sentinels.fail_over();
        sentinels.wait_for_new_primary()
    });
    let promoted_at = Instant::now();
    eprintln!(
        "sentinel: primary demoted → refused → SENTINEL FAILOVER → promotion observed in {:?} (new primary {promoted})",
        promoted_at - sentinels.lost_at()
    );
    wait_ready(&app, true).await;
    create_within(&app, "dm-2", SERVED_AGAIN).await;
    eprintln!(
        "sentinel: promotion observed → the service ready and creating again in {:?}",
        promoted_at.elapsed()
    );
    let posts = posts_per_reference(&novasend).await;
    assert_eq!(posts.get("dm-2"), Some(&1), "dm-2 created upstream once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_wait_replicas_a_create_waits_for_the_replica_or_fails_closed() {
    let mut sentinels = RedisSentinels::start();
    let novasend = novasend().await;
    let app = spawn_app(&novasend, sentinel_config(&sentinels, 1)).await;
    create_within(&app, "wr-1", SERVED_AGAIN).await;

    block_in_place(|| sentinels.stop_replica());
    refused_without_a_provider_call(&app, &novasend, "wr-2").await;

    block_in_place(|| sentinels.start_replica());
    // The same key again: the claim that no replica acknowledged must not block it.
    create_within(&app, "wr-2", SERVED_AGAIN).await;
    let posts = posts_per_reference(&novasend).await;
    assert_eq!(posts.get("wr-2"), Some(&1), "wr-2 created upstream once");
}

/// WAIT blocks the connection it is sent on (Redis blocks the client, and everything queued
/// behind it). With the replica down, concurrent creates fail closed, as they must, but on
/// their own connection: a GetPayin of a payin already kept, which needs no replica, still
/// answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_replica_down_failing_creates_do_not_take_reads_down_with_them() {
    use payments_gateway::proto::GetPayinRequest;
    let mut sentinels = RedisSentinels::start();
    let novasend = novasend().await;
    let app = spawn_app(&novasend, sentinel_config(&sentinels, 1)).await;
    create_within(&app, "rd-1", SERVED_AGAIN).await;
    let mut client = app.client().await;
    // Before the replica goes: the read works.
    client
        .get_payin(GetPayinRequest {
            reference: "rd-1".into(),
            refresh: false,
        })
        .await
        .expect("a read with the replica up");

    block_in_place(|| sentinels.stop_replica());
    let creates: Vec<_> = (0..8)
        .map(|i| {
            let mut client = client.clone();
            tokio::spawn(async move {
                let reference = format!("rd-c{i}");
                let _ = client
                    .create_payin(create_request(&reference, &format!("key-{reference}")))
                    .await;
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let read = client
        .get_payin(GetPayinRequest {
            reference: "rd-1".into(),
            refresh: false,
        })
        .await;
    eprintln!(
        "read with the replica down: {:?} after {:?}",
        read.as_ref().map(|_| "ok").map_err(|s| s.code()),
        started.elapsed()
    );
    for c in creates {
        let _ = c.await;
    }
    assert!(read.is_ok(), "a read needs no replica: {read:?}");
}
