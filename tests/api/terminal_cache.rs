//! A terminal payin is answered from the replica's memory, and a refund made on any replica
//! reaches every replica's copy through the store's announcements.

use crate::common::*;
use crate::refund::{novasend_refunds, refund_request, succeeded_payin};
use payments_gateway::proto::GetPayinRequest;
use std::time::{Duration, Instant};

fn get(reference: &str) -> GetPayinRequest {
    GetPayinRequest {
        reference: reference.into(),
        refresh: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_on_one_replica_reaches_the_other_replica_s_copy() {
    let mut h = Harness::start().await;
    h.novasend_creates().await;
    succeeded_payin(&mut h, "order-tcache").await;
    novasend_refunds(&h, "order-tcache", Duration::ZERO).await;
    let other = TestApp::spawn(test_config(
        &h.novasend.uri(),
        Some(h.redis.url()),
        test_settings(),
    ))
    .await;
    let mut other_client = other.client().await;

    // The other replica keeps the terminal payin in memory: Redis is not needed to answer.
    let kept = other_client
        .get_payin(get("order-tcache"))
        .await
        .unwrap()
        .into_inner();
    assert!(kept.refund.is_none());
    h.redis.command(&["CLIENT", "PAUSE", "1500", "ALL"]);
    let started = Instant::now();
    let from_memory = other_client
        .get_payin(get("order-tcache"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(from_memory, kept);
    assert!(
        started.elapsed() < Duration::from_millis(1000),
        "it waited for Redis"
    );
    tokio::time::sleep(Duration::from_millis(1600)).await;

    // A refund through the first replica is announced; the other replica's copy follows.
    let refund = h
        .client
        .refund(refund_request("order-tcache", "rk-tcache"))
        .await
        .unwrap()
        .into_inner();
    let deadline = Instant::now() + Duration::from_secs(5);
    let seen = loop {
        let payin = other_client
            .get_payin(get("order-tcache"))
            .await
            .unwrap()
            .into_inner();
        if payin.refund.is_some() || Instant::now() > deadline {
            break payin;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(seen.refund.map(|r| r.reference), Some(refund.reference));
}
