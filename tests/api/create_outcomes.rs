//! Contract §3, "unknown outcomes, completely": a create that may have happened upstream is
//! reconciled and never recorded as INTERNAL; a definitive refusal that created nothing frees
//! the reference for a new key.

use crate::common::*;
use payments_gateway::proto::{CreatePayinRequest, GetPayinRequest};
use serde_json::json;
use std::time::Duration;
use tonic::Code;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

async fn novasend_posts_answer(h: &Harness, template: ResponseTemplate, times: u64) {
    Mock::given(method("POST"))
        .and(path("/v1/payin/sessions"))
        .respond_with(template)
        .up_to_n_times(times)
        .with_priority(1)
        .mount(&h.novasend)
        .await;
}

async fn novasend_does_not_know(h: &Harness, reference: &str, times: u64) {
    Mock::given(method("GET"))
        .and(path(format!("/v1/payin/{reference}")))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "not found"})))
        .up_to_n_times(times)
        .with_priority(1)
        .mount(&h.novasend)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_2xx_create_is_reconciled_not_recorded_as_internal() {
    let mut h = Harness::start().await;
    novasend_posts_answer(
        &h,
        ResponseTemplate::new(201).set_body_string("{\"id\": \"pr_"),
        1,
    )
    .await;
    h.novasend_reports("order-co1", payin_2026("order-co1", "processing", "none"))
        .await;
    let payin = h
        .client
        .create_payin(create_request("order-co1", "key-co1"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(payin.provider_reference, "pr_order-co1");
    assert_eq!(h.upstream("POST").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_2xx_create_unknown_upstream_stays_retryable() {
    let mut h = Harness::start().await;
    novasend_posts_answer(&h, ResponseTemplate::new(200).set_body_string("<html>"), 1).await;
    novasend_does_not_know(&h, "order-co2", 1).await;
    h.novasend_creates().await;
    let unknown = h
        .client
        .create_payin(create_request("order-co2", "key-co2"))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::Unavailable, "{unknown:?}");
    // Not recorded: the retry with the same key carries the work through, same Novasend key.
    let payin = h
        .client
        .create_payin(create_request("order-co2", "key-co2"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(payin.reference, "order-co2");
    let posts = h.upstream("POST").await;
    assert_eq!(posts.len(), 2);
    assert_eq!(
        posts[0].headers.get("x-idempotency-key"),
        posts[1].headers.get("x-idempotency-key")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_409_is_reconciled_before_it_becomes_already_exists() {
    let mut h = Harness::start().await;
    let conflict = ResponseTemplate::new(409).set_body_json(json!({"message": "duplicate key"}));
    novasend_posts_answer(&h, conflict, 1).await;
    h.novasend_reports("order-co3", payin_2026("order-co3", "processing", "none"))
        .await;
    let payin = h
        .client
        .create_payin(create_request("order-co3", "key-co3"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(payin.provider_reference, "pr_order-co3");

    // A 409 for a payin Novasend holds with another amount is someone else's.
    let mut other = payin_2026("order-co4", "processing", "none");
    other["amount"] = json!(999);
    let conflict =
        ResponseTemplate::new(409).set_body_json(json!({"message": "duplicate reference"}));
    novasend_posts_answer(&h, conflict, 1).await;
    h.novasend_reports("order-co4", other).await;
    let taken = h
        .client
        .create_payin(create_request("order-co4", "key-co4"))
        .await
        .unwrap_err();
    assert_eq!(taken.code(), Code::AlreadyExists, "{taken:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_definitive_refusal_frees_the_reference_for_a_new_key() {
    let mut h = Harness::start().await;
    h.novasend_creates().await;
    for (status, code) in [
        (401, Code::Internal),
        (403, Code::Internal),
        (404, Code::NotFound),
        (422, Code::InvalidArgument),
    ] {
        let reference = format!("order-free-{status}");
        let refusal = ResponseTemplate::new(status).set_body_json(json!({"message": "no"}));
        novasend_posts_answer(&h, refusal, 1).await;
        let refused = h
            .client
            .create_payin(create_request(&reference, &format!("key-{status}-a")))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), code, "{refused:?}");
        // The cause fixed, the merchant retries with a new key: the reference is free.
        let created = h
            .client
            .create_payin(create_request(&reference, &format!("key-{status}-b")))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(created.reference, reference);
    }
}

/// A payin first cached through a refresh (its create's answer was lost) keeps the country and
/// account the create asked for, in what is recorded and replayed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payin_first_seen_by_a_refresh_keeps_country_and_account() {
    let mut settings = test_settings();
    settings.upstream_timeout = Duration::from_millis(300);
    let mut h = Harness::with_settings(settings).await;
    let late = ResponseTemplate::new(201)
        .set_body_json(payin_2026("order-co5", "processing", "none"))
        .set_delay(Duration::from_secs(1));
    novasend_posts_answer(&h, late, 1).await;
    novasend_does_not_know(&h, "order-co5", 1).await;
    h.novasend_reports("order-co5", payin_2026("order-co5", "processing", "none"))
        .await;
    let request = CreatePayinRequest {
        account_id: "acct-7".into(),
        ..create_request("order-co5", "key-co5")
    };
    let unknown = h.client.create_payin(request.clone()).await.unwrap_err();
    assert_eq!(unknown.code(), Code::Unavailable);
    let seen = h
        .client
        .get_payin(GetPayinRequest {
            reference: "order-co5".into(),
            refresh: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(seen.country, "", "a refresh cannot know the country");

    let created = h
        .client
        .create_payin(request.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (created.country.as_str(), created.account_id.as_str()),
        ("CI", "acct-7")
    );
    let replayed = h.client.create_payin(request).await.unwrap().into_inner();
    assert_eq!(replayed, created);
    assert_eq!(h.upstream("POST").await.len(), 1);
}
