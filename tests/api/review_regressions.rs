//! Found by an adversarial review of the §3 changes; each failed before its fix.

use crate::common::fault_proxy::{FaultProxy, ProxyMode};
use crate::common::*;
use serde_json::json;
use std::time::Duration;
use tonic::Code;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

/// A 409 answered to a retry that reuses *our own* X-Idempotency-Key (the first
/// POST got a 5xx) says nothing about "another payin"; with GET still 404 the outcome is
/// unknown. The service records ALREADY_EXISTS for good, and the reference stays claimed by
/// this key, so no key can ever create it, although no payin exists anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_409_for_our_own_key_after_a_5xx_is_not_recorded_as_already_exists() {
    let h = Harness::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/payin/sessions"))
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({"message": "boom"})))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&h.novasend)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/payin/sessions"))
        .respond_with(
            ResponseTemplate::new(409)
                .set_body_json(json!({"message": "duplicate idempotency key"})),
        )
        .with_priority(2)
        .mount(&h.novasend)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/payin/order-rv1"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "not found"})))
        .mount(&h.novasend)
        .await;
    let mut client = h.client.clone();
    let first = client
        .create_payin(create_request("order-rv1", "key-rv1"))
        .await
        .unwrap_err();
    assert_eq!(first.code(), Code::Unavailable, "{first:?}");
    let retry = client
        .create_payin(create_request("order-rv1", "key-rv1"))
        .await
        .unwrap_err();
    let posts = h.upstream("POST").await;
    assert_eq!(
        posts[0].headers.get("x-idempotency-key"),
        posts[1].headers.get("x-idempotency-key"),
        "the 409 is for our own key"
    );
    assert_eq!(
        retry.code(),
        Code::Unavailable,
        "409 for our own key + GET 404 is an unknown outcome, not a final ALREADY_EXISTS: {retry:?}"
    );
}

/// The fence holds the record over the whole provider call, not half a lease: replica A
/// passes the fence and posts, then loses Redis while its POST is in flight; replica B must not
/// take the record over (and post too) before A's call has surely ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_does_not_post_while_the_first_post_is_still_in_flight() {
    let redis = RedisServer::start();
    let proxy = FaultProxy::start(([127, 0, 0, 1], redis.port).into()).await;
    let novasend = wiremock::MockServer::start().await;
    let mut settings = test_settings();
    settings.attempt_lease = Duration::from_secs(1);
    settings.upstream_timeout = Duration::from_secs(5);
    Mock::given(method("POST"))
        .and(path("/v1/payin/sessions"))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(payin_2026("order-rv2", "processing", "none"))
                .set_delay(Duration::from_secs(3)),
        )
        .mount(&novasend)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/payin/order-rv2"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "not found"})))
        .mount(&novasend)
        .await;
    let replica_a = TestApp::spawn(test_config(
        &novasend.uri(),
        Some(format!("redis://127.0.0.1:{}", proxy.port())),
        settings.clone(),
    ))
    .await;
    let replica_b = TestApp::spawn(test_config(&novasend.uri(), Some(redis.url()), settings)).await;
    let mut client_a = replica_a.client().await;
    let mut client_b = replica_b.client().await;

    let first = tokio::spawn(async move {
        client_a
            .create_payin(create_request("order-rv2", "key-rv2"))
            .await
    });
    // A has passed its fence and its POST is in flight; then A loses Redis.
    for _ in 0..100 {
        if !novasend.received_requests().await.unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    proxy.set_mode(ProxyMode::Reset);
    // After one lease (A cannot renew), the client's retry reaches replica B.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let second = tokio::spawn(async move {
        client_b
            .create_payin(create_request("order-rv2", "key-rv2"))
            .await
    });
    // Still before A's POST is answered (3 s after it was sent).
    tokio::time::sleep(Duration::from_millis(800)).await;
    let posts_while_first_in_flight = novasend
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.method.as_str() == "POST")
        .count();
    let _ = first.await;
    let _ = second.await;
    assert_eq!(
        posts_while_first_in_flight, 1,
        "a second attempt posted while the first attempt's POST was still in flight"
    );
}

/// A brand-new key (claim New, not resumed: no attempt of ours ever used this
/// X-Idempotency-Key) gets 409 because Novasend already holds an *older* payin with this
/// reference (e.g. a reference reused after the 30-day claim expired, or created outside this
/// service). Reconciliation finds that payin, compares only the amount, and answers it as the
/// new key's own creation — here SUCCEEDED, paid by another phone, for an order nobody paid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_409_for_a_fresh_key_is_someone_elses_payin_not_ours() {
    let h = Harness::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/payin/sessions"))
        .respond_with(
            ResponseTemplate::new(409).set_body_json(json!({"message": "duplicate reference"})),
        )
        .mount(&h.novasend)
        .await;
    let mut old = payin_2026("order-rv3", "processed", "accepted");
    old["transaction"] = transaction("completed");
    old["customer"] = json!({"name": "Someone Else", "phoneNumber": "+2250500009999"});
    h.novasend_reports("order-rv3", old).await;
    let mut client = h.client.clone();
    let answer = client
        .create_payin(create_request("order-rv3", "key-rv3-fresh"))
        .await;
    match answer {
        Err(status) => assert_eq!(status.code(), Code::AlreadyExists, "{status:?}"),
        Ok(payin) => panic!(
            "a fresh key was handed another payin as its own creation: status {:?}, phone {:?}",
            payin.get_ref().status(),
            payin
                .get_ref()
                .customer
                .as_ref()
                .map(|c| c.phone_number.clone())
        ),
    }
}

/// A refund whose first POST timed out (it may have been carried out) is retried
/// with the same key; the retry gets 403 (a WAF, rotated credentials). The retry never
/// reconciles, so INTERNAL is recorded for good for a key whose refund may exist upstream, and
/// GetPayin never shows it. (Same with 400/404/422 and with 409 → FAILED_PRECONDITION.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_retry_after_an_unknown_outcome_never_records_internal() {
    use crate::refund::{refund_request, succeeded_payin};
    let mut settings = test_settings();
    settings.upstream_timeout = Duration::from_millis(500);
    let mut h = Harness::with_settings(settings).await;
    h.novasend_creates().await;
    succeeded_payin(&mut h, "order-rv4").await;
    Mock::given(method("POST"))
        .and(path("/v1/payin/order-rv4/refund"))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(refund_json("order-rv4", 300, "full"))
                .set_delay(Duration::from_secs(2)),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&h.novasend)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/payin/order-rv4/refund"))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({"message": "forbidden"})))
        .with_priority(2)
        .mount(&h.novasend)
        .await;
    let first = h
        .client
        .refund(refund_request("order-rv4", "rk-rv4"))
        .await
        .unwrap_err();
    assert_eq!(first.code(), Code::Unavailable, "{first:?}");
    let retry = h
        .client
        .refund(refund_request("order-rv4", "rk-rv4"))
        .await
        .unwrap_err();
    assert_ne!(
        retry.code(),
        Code::Internal,
        "INTERNAL recorded for a refund that may exist upstream: {retry:?}"
    );
}
