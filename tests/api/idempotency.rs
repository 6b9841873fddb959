use crate::common::*;
use payments_gateway::payments::upstream_idempotency_key;
use payments_gateway::proto::{CreatePayinRequest, RefundRequest};
use prost::Message;
use std::time::Duration;
use tonic::Code;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_key_same_request_replays_the_stored_response_byte_for_byte() {
    let mut h = Harness::start().await;
    h.novasend_creates().await;
    let request = create_request("order-replay", "key-replay");
    let first = h
        .client
        .create_payin(request.clone())
        .await
        .unwrap()
        .into_inner();
    let second = h.client.create_payin(request).await.unwrap().into_inner();
    assert_eq!(first.encode_to_vec(), second.encode_to_vec());
    assert_eq!(h.upstream("POST").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_key_different_request_is_a_failed_precondition_without_upstream_call() {
    let mut h = Harness::start().await;
    h.novasend_creates().await;
    h.client
        .create_payin(create_request("order-a", "shared-key"))
        .await
        .unwrap();
    let changed = CreatePayinRequest {
        amount: 301,
        ..create_request("order-a", "shared-key")
    };
    let status = h.client.create_payin(changed).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(h.upstream("POST").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_duplicates_make_exactly_one_upstream_post() {
    let h = Harness::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/payin/sessions"))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(payin_2026("order-50", "processing", "none"))
                .set_delay(Duration::from_millis(400)),
        )
        .mount(&h.novasend)
        .await;
    let calls = (0..50).map(|_| {
        let mut client = h.client.clone();
        tokio::spawn(async move {
            client
                .create_payin(create_request("order-50", "key-50"))
                .await
        })
    });
    let results = all_finished(calls).await;
    let payins: Vec<_> = results
        .into_iter()
        .map(|r| r.expect("every duplicate gets the payin").into_inner())
        .collect();
    assert_eq!(h.upstream("POST").await.len(), 1);
    assert!(payins.iter().all(|p| p == &payins[0]));
    assert_eq!(payins[0].provider_reference, "pr_order-50");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_still_in_flight_after_the_wait_is_aborted() {
    let mut settings = test_settings();
    settings.idempotency_wait = Duration::from_millis(300);
    let h = Harness::with_settings(settings).await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(payin_2026("order-slow", "processing", "none"))
                .set_delay(Duration::from_millis(1500)),
        )
        .mount(&h.novasend)
        .await;
    let mut first_client = h.client.clone();
    let first = tokio::spawn(async move {
        first_client
            .create_payin(create_request("order-slow", "key-slow"))
            .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut client = h.client.clone();
    let duplicate = client
        .create_payin(create_request("order-slow", "key-slow"))
        .await
        .unwrap_err();
    assert_eq!(duplicate.code(), Code::Aborted, "{duplicate:?}");
    let first = first.await.unwrap().unwrap().into_inner();
    // Safe to retry: the retry now gets the first call's payin.
    let retried = client
        .create_payin(create_request("order-slow", "key-slow"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first, retried);
    assert_eq!(h.upstream("POST").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_means_unavailable_and_no_upstream_call() {
    let mut h = Harness::start().await;
    h.novasend_creates().await;
    h.create("order-before").await;
    let posts_before = h.upstream("POST").await.len();

    h.redis.stop();
    let create = h
        .client
        .create_payin(create_request("order-during", "key-during"))
        .await
        .unwrap_err();
    assert_eq!(create.code(), Code::Unavailable, "{create:?}");
    let refund = h
        .client
        .refund(RefundRequest {
            reference: "order-before".into(),
            reason: "r".into(),
            idempotency_key: "rk".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refund.code(), Code::Unavailable, "{refund:?}");
    assert_eq!(
        h.upstream("POST").await.len(),
        posts_before,
        "fail closed: nothing sent upstream"
    );

    h.redis.restart();
    let mut recovered = None;
    for _ in 0..50 {
        match h
            .client
            .create_payin(create_request("order-during", "key-during"))
            .await
        {
            Ok(p) => {
                recovered = Some(p.into_inner());
                break;
            }
            Err(s) => assert_eq!(s.code(), Code::Unavailable),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        recovered.expect("works again once Redis is back").reference,
        "order-during"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reference_reused_with_a_new_key_already_exists() {
    let mut h = Harness::start().await;
    h.novasend_creates().await;
    h.client
        .create_payin(create_request("order-dup", "key-1"))
        .await
        .unwrap();
    let status = h
        .client
        .create_payin(create_request("order-dup", "key-2"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);
    assert_eq!(h.upstream("POST").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_failure_is_not_replayed_and_the_retry_uses_the_same_novasend_key() {
    let mut h = Harness::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).set_body_json(serde_json::json!({"error": "Service Unavailable", "statusCode": 503, "message": "maintenance"})))
        .up_to_n_times(1)
        .mount(&h.novasend)
        .await;
    h.novasend_creates().await;
    let first = h
        .client
        .create_payin(create_request("order-503", "key-503"))
        .await
        .unwrap_err();
    assert_eq!(first.code(), Code::Unavailable);
    let retried = h
        .client
        .create_payin(create_request("order-503", "key-503"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(retried.reference, "order-503");

    let posts = h.upstream("POST").await;
    assert_eq!(posts.len(), 2);
    let expected = upstream_idempotency_key("create", "key-503").to_string();
    for post in posts {
        assert_eq!(
            post.headers
                .get("x-idempotency-key")
                .unwrap()
                .to_str()
                .unwrap(),
            expected
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_definitive_error_is_replayed_without_a_new_upstream_call() {
    let mut h = Harness::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(422).set_body_json(serde_json::json!({
            "error": "Unprocessable Entity", "statusCode": 422, "correlationId": "c-9",
            "message": "msisdn not eligible"
        })))
        .mount(&h.novasend)
        .await;
    let first = h
        .client
        .create_payin(create_request("order-422", "key-422"))
        .await
        .unwrap_err();
    let second = h
        .client
        .create_payin(create_request("order-422", "key-422"))
        .await
        .unwrap_err();
    assert_eq!(first.code(), Code::InvalidArgument);
    assert!(first.message().contains("msisdn not eligible"));
    assert_eq!(
        (first.code(), first.message(), first.details()),
        (second.code(), second.message(), second.details())
    );
    assert_eq!(h.upstream("POST").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_the_record_expired_finds_the_payin_instead_of_posting_again() {
    let mut h = Harness::start().await;
    h.novasend_creates().await;
    h.novasend_reports("order-old", payin_2026("order-old", "processing", "none"))
        .await;
    let first = h
        .client
        .create_payin(create_request("order-old", "key-old"))
        .await
        .unwrap()
        .into_inner();
    // The record's TTL ran out; the reference claim (kept as long as the payin) did not.
    h.redis.command(&["DEL", "pgw:idem:create:key-old"]);
    let again = h
        .client
        .create_payin(create_request("order-old", "key-old"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.provider_reference, first.provider_reference);
    assert_eq!(
        h.upstream("POST").await.len(),
        1,
        "reconciled, not posted again"
    );
}
