use crate::common::*;
use payments_gateway::payments::upstream_idempotency_key;
use payments_gateway::proto::{self as pb, GetPayinRequest, RefundRequest};
use serde_json::{Value, json};
use std::time::Duration;
use tonic::Code;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

pub(crate) fn refund_request(reference: &str, key: &str) -> RefundRequest {
    RefundRequest {
        reference: reference.into(),
        reason: "customer asked".into(),
        external_reference: "ext-1".into(),
        amount: 0,
        idempotency_key: key.into(),
    }
}

/// A payin that Novasend reports as succeeded.
pub(crate) async fn succeeded_payin(h: &mut Harness, reference: &str) {
    h.create(reference).await;
    let mut body = payin_2026(reference, "processed", "accepted");
    body["transaction"] = transaction("completed");
    h.novasend_reports(reference, body).await;
    let payin = h
        .client
        .get_payin(GetPayinRequest {
            reference: reference.into(),
            refresh: true,
        })
        .await
        .unwrap();
    assert_eq!(payin.get_ref().status(), pb::PayinStatus::Succeeded);
}

pub(crate) async fn novasend_refunds(h: &Harness, reference: &str, delay: Duration) {
    let reference = reference.to_owned();
    Mock::given(method("POST"))
        .and(path(format!("/v1/payin/{reference}/refund")))
        .respond_with(move |request: &wiremock::Request| {
            let body: Value = serde_json::from_slice(&request.body).unwrap();
            let (amount, kind) = match body.get("amount").and_then(Value::as_i64) {
                Some(a) => (a, "partial"),
                None => (300, "full"),
            };
            ResponseTemplate::new(201)
                .set_body_json(refund_json(&reference, amount, kind))
                .set_delay(delay)
        })
        .mount(&h.novasend)
        .await;
}

pub(crate) async fn refund_posts(h: &Harness) -> Vec<wiremock::Request> {
    h.upstream("POST")
        .await
        .into_iter()
        .filter(|r| r.url.path().ends_with("/refund"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refunds_a_succeeded_payin_once() {
    let mut h = Harness::start().await;
    h.novasend_creates().await;
    succeeded_payin(&mut h, "order-r1").await;
    novasend_refunds(&h, "order-r1", Duration::ZERO).await;

    let refund = h
        .client
        .refund(refund_request("order-r1", "rk-1"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(refund.reference, "rf_order-r1");
    assert_eq!(refund.original_reference, "pr_order-r1");
    assert_eq!(refund.amount, 300);
    assert_eq!(refund.refund_type(), pb::RefundType::Full);
    assert_eq!(refund.status(), pb::RefundStatus::Processing);
    assert_eq!(refund.external_reference, "ext-1");

    let posts = refund_posts(&h).await;
    assert_eq!(posts.len(), 1);
    let body: Value = serde_json::from_slice(&posts[0].body).unwrap();
    assert_eq!(
        body,
        json!({"reason": "customer asked", "externalReference": "ext-1"})
    );
    assert_eq!(
        posts[0]
            .headers
            .get("x-idempotency-key")
            .unwrap()
            .to_str()
            .unwrap(),
        upstream_idempotency_key("refund", "rk-1").to_string()
    );

    // Same key: the stored answer. Another key: already refunded.
    let replay = h
        .client
        .refund(refund_request("order-r1", "rk-1"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(replay, refund);
    let again = h
        .client
        .refund(refund_request("order-r1", "rk-2"))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);
    assert_eq!(refund_posts(&h).await.len(), 1);

    let payin = h
        .client
        .get_payin(GetPayinRequest {
            reference: "order-r1".into(),
            refresh: false,
        })
        .await
        .unwrap();
    assert_eq!(payin.into_inner().refund.unwrap().reference, "rf_order-r1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_refund_and_amount_rules() {
    let mut h = Harness::start().await;
    h.novasend_creates().await;
    succeeded_payin(&mut h, "order-r2").await;
    novasend_refunds(&h, "order-r2", Duration::ZERO).await;

    let too_much = h
        .client
        .refund(RefundRequest {
            amount: 301,
            ..refund_request("order-r2", "rk")
        })
        .await
        .unwrap_err();
    assert_eq!(too_much.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&too_much), vec!["amount"]);
    assert!(refund_posts(&h).await.is_empty());
    assert!(
        h.redis.keys("pgw:idem:refund:*").is_empty(),
        "an invalid refund leaves no record"
    );

    // Same key, fixed request: not a conflict, since nothing was recorded.
    let partial = h
        .client
        .refund(RefundRequest {
            amount: 100,
            ..refund_request("order-r2", "rk")
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (partial.amount, partial.refund_type()),
        (100, pb::RefundType::Partial)
    );
    let body: Value = serde_json::from_slice(&refund_posts(&h).await[0].body).unwrap();
    assert_eq!(body["amount"], 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_succeeded_payin_can_be_refunded() {
    let mut h = Harness::start().await;
    h.novasend_creates().await;
    // Non-terminal: refreshed first, still awaiting confirmation.
    h.create("order-waiting").await;
    h.novasend_reports(
        "order-waiting",
        payin_2026("order-waiting", "processing", "none"),
    )
    .await;
    let waiting = h
        .client
        .refund(refund_request("order-waiting", "rk-w"))
        .await
        .unwrap_err();
    assert_eq!(waiting.code(), Code::FailedPrecondition);
    assert!(
        waiting
            .message()
            .contains("PAYIN_STATUS_AWAITING_CONFIRMATION"),
        "{}",
        waiting.message()
    );
    assert!(
        !h.upstream("GET").await.is_empty(),
        "a non-terminal payin is refreshed first"
    );

    h.create("order-declined").await;
    h.novasend_reports(
        "order-declined",
        payin_2026("order-declined", "processing", "declined"),
    )
    .await;
    let declined = h
        .client
        .refund(refund_request("order-declined", "rk-d"))
        .await
        .unwrap_err();
    assert_eq!(declined.code(), Code::FailedPrecondition);

    let unknown = h
        .client
        .refund(refund_request("order-unknown", "rk-u"))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    assert!(refund_posts(&h).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn novasend_409_on_refund_is_a_failed_precondition() {
    let mut h = Harness::start().await;
    h.novasend_creates().await;
    succeeded_payin(&mut h, "order-r409").await;
    Mock::given(method("POST"))
        .and(path("/v1/payin/order-r409/refund"))
        .respond_with(ResponseTemplate::new(409).set_body_json(
            json!({"error": "Conflict", "statusCode": 409, "message": "already refunded"}),
        ))
        .mount(&h.novasend)
        .await;
    let status = h
        .client
        .refund(refund_request("order-r409", "rk"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_concurrent_refunds_send_one_request_upstream() {
    let mut h = Harness::start().await;
    h.novasend_creates().await;
    succeeded_payin(&mut h, "order-r10").await;
    novasend_refunds(&h, "order-r10", Duration::from_millis(300)).await;

    let calls = (0..10).map(|i| {
        let mut client = h.client.clone();
        tokio::spawn(async move {
            client
                .refund(refund_request("order-r10", &format!("rk-{i}")))
                .await
        })
    });
    let results = all_finished(calls).await;
    let succeeded = results.iter().filter(|r| r.is_ok()).count();
    let refused = results
        .iter()
        .filter(|r| matches!(r, Err(s) if s.code() == Code::FailedPrecondition))
        .count();
    assert_eq!((succeeded, refused), (1, 9), "{results:?}");
    assert_eq!(refund_posts(&h).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_with_an_unknown_outcome_can_only_be_retried_with_its_own_key() {
    let mut settings = crate::common::test_settings();
    settings.upstream_timeout = Duration::from_millis(500);
    settings.idempotency_wait = Duration::from_millis(300);
    let mut h = Harness::with_settings(settings).await;
    h.novasend_creates().await;
    succeeded_payin(&mut h, "order-ru").await;
    Mock::given(method("POST"))
        .and(path("/v1/payin/order-ru/refund"))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(refund_json("order-ru", 300, "full"))
                .set_delay(Duration::from_secs(2)),
        )
        .up_to_n_times(1)
        .mount(&h.novasend)
        .await;
    novasend_refunds(&h, "order-ru", Duration::ZERO).await;

    let unknown = h
        .client
        .refund(refund_request("order-ru", "rk-first"))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::Unavailable, "{unknown:?}");
    let other_key = h
        .client
        .refund(refund_request("order-ru", "rk-other"))
        .await
        .unwrap_err();
    assert_eq!(other_key.code(), Code::FailedPrecondition, "{other_key:?}");

    let retried = h
        .client
        .refund(refund_request("order-ru", "rk-first"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(retried.reference, "rf_order-ru");
    let posts = refund_posts(&h).await;
    assert_eq!(
        posts.len(),
        2,
        "the retry goes upstream again, deduplicated by its key"
    );
    let first_key = posts[0].headers.get("x-idempotency-key").unwrap();
    assert!(
        posts
            .iter()
            .all(|p| p.headers.get("x-idempotency-key").unwrap() == first_key)
    );
}
