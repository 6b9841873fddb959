//! Contract §3, "a refund is sent at most once per payin, for good": once a refund request may
//! have reached Novasend, the payin is marked refund-sent, and no error, retry or lapse of
//! time lets another key send a second one.

use crate::common::*;
use crate::refund::{novasend_refunds, refund_posts, refund_request, succeeded_payin};
use payments_gateway::proto::GetPayinRequest;
use std::time::Duration;
use tonic::Code;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

/// Novasend answers the next refund of `reference` with `template`, once.
async fn next_refund_answer(h: &Harness, reference: &str, template: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(path(format!("/v1/payin/{reference}/refund")))
        .respond_with(template)
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&h.novasend)
        .await;
}

async fn harness_with_succeeded(reference: &str) -> Harness {
    let mut settings = test_settings();
    settings.upstream_timeout = Duration::from_millis(500);
    let mut h = Harness::with_settings(settings).await;
    h.novasend_creates().await;
    succeeded_payin(&mut h, reference).await;
    novasend_refunds(&h, reference, Duration::ZERO).await;
    h
}

/// Whatever the first key's refund ended with, another key is refused at once without
/// reaching Novasend, and the first key's retry goes with the same Novasend key.
async fn another_key_never_refunds_after(first_answer: ResponseTemplate, expected: Code) {
    let reference = format!("order-rm-{}", expected as i32);
    let mut h = harness_with_succeeded(&reference).await;
    next_refund_answer(&h, &reference, first_answer).await;

    let first = h
        .client
        .refund(refund_request(&reference, "rk-a"))
        .await
        .unwrap_err();
    assert_eq!(first.code(), expected, "{first:?}");
    assert_eq!(refund_posts(&h).await.len(), 1);

    let other = h
        .client
        .refund(refund_request(&reference, "rk-b"))
        .await
        .unwrap_err();
    assert_eq!(other.code(), Code::FailedPrecondition, "{other:?}");
    assert!(
        other.message().contains("another idempotency key"),
        "{other:?}"
    );
    assert_eq!(
        refund_posts(&h).await.len(),
        1,
        "the other key reached Novasend"
    );

    if matches!(expected, Code::Unavailable | Code::ResourceExhausted) {
        // A transient answer: the same key carries the work through, with the same key upstream.
        let retried = h
            .client
            .refund(refund_request(&reference, "rk-a"))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(retried.reference, format!("rf_{reference}"));
        let posts = refund_posts(&h).await;
        assert_eq!(posts.len(), 2);
        assert_eq!(
            posts[0].headers.get("x-idempotency-key"),
            posts[1].headers.get("x-idempotency-key")
        );
        let payin = h
            .client
            .get_payin(GetPayinRequest {
                reference: reference.clone(),
                refresh: false,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(payin.refund.unwrap().reference, format!("rf_{reference}"));
    }
}

fn novasend_error(status: u16) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(serde_json::json!({
        "error": "Error", "statusCode": status, "message": "refused", "subErrors": []
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_refund_keeps_the_payin_marked() {
    another_key_never_refunds_after(novasend_error(429), Code::ResourceExhausted).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_refund_keeps_the_payin_marked() {
    another_key_never_refunds_after(novasend_error(422), Code::InvalidArgument).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_2xx_refund_is_an_unknown_outcome_and_keeps_the_mark() {
    let unreadable = ResponseTemplate::new(201).set_body_string("{\"reference\": \"rf_");
    another_key_never_refunds_after(unreadable, Code::Unavailable).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_reset_or_5xx_keeps_the_mark() {
    another_key_never_refunds_after(novasend_error(503), Code::Unavailable).await;
}

/// The refund succeeds upstream but cannot be saved (Redis refuses writes meanwhile): the
/// caller is told to retry, and the mark (written before the POST) still stops another key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_done_upstream_but_not_saved_still_blocks_another_key() {
    let reference = "order-rm-unsaved";
    let h = harness_with_succeeded(reference).await;
    next_refund_answer(
        &h,
        reference,
        ResponseTemplate::new(201)
            .set_body_json(refund_json(reference, 300, "full"))
            .set_delay(Duration::from_millis(300)),
    )
    .await;
    let mut client = h.client.clone();
    let refund =
        tokio::spawn(async move { client.refund(refund_request(reference, "rk-a")).await });
    // While the POST is on its way, Redis stops taking writes for longer than a call may wait.
    tokio::time::sleep(Duration::from_millis(100)).await;
    h.redis.command(&["CLIENT", "PAUSE", "4500", "WRITE"]);
    let unsaved = refund.await.unwrap().unwrap_err();
    assert_eq!(unsaved.code(), Code::Unavailable, "{unsaved:?}");
    assert_eq!(refund_posts(&h).await.len(), 1);
    h.redis.command(&["CLIENT", "UNPAUSE"]);

    let mut client = h.client.clone();
    let other = client
        .refund(refund_request(reference, "rk-b"))
        .await
        .unwrap_err();
    assert_eq!(other.code(), Code::FailedPrecondition, "{other:?}");
    assert_eq!(
        refund_posts(&h).await.len(),
        1,
        "a second refund went upstream"
    );
}
