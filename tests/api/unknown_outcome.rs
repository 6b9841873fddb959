use crate::common::flaky_novasend::{FlakyNovasend, PostBehavior};
use crate::common::*;
use payments_gateway::payments::upstream_idempotency_key;
use tonic::Code;

async fn start(novasend: &FlakyNovasend) -> (RedisServer, TestApp) {
    let redis = RedisServer::start();
    let app = TestApp::spawn(test_config(
        &novasend.url,
        Some(redis.url()),
        test_settings(),
    ))
    .await;
    (redis, app)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn created_then_dropped_is_reconciled_without_a_second_post() {
    let novasend = FlakyNovasend::start().await;
    novasend.plan_posts(&[PostBehavior::CreateThenDrop]);
    let (_redis, app) = start(&novasend).await;
    let mut client = app.client().await;

    let payin = client
        .create_payin(create_request("order-drop", "key-drop"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(payin.provider_reference, "pr_order-drop");
    assert_eq!(novasend.posts().len(), 1);
    assert_eq!(novasend.payins_created(), 1);

    // The retry is a replay: no call upstream at all.
    let gets = novasend.gets();
    let again = client
        .create_payin(create_request("order-drop", "key-drop"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again, payin);
    assert_eq!((novasend.posts().len(), novasend.gets()), (1, gets));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_outcome_then_retry_with_the_same_key_returns_the_payin_never_a_second_one() {
    let novasend = FlakyNovasend::start().await;
    novasend.plan_posts(&[PostBehavior::CreateThenDrop]);
    // Reconciliation fails too (every attempt of the first call's GET, retries included).
    novasend.fail_gets(3);
    let (_redis, app) = start(&novasend).await;
    let mut client = app.client().await;

    let first = client
        .create_payin(create_request("order-unknown", "key-unknown"))
        .await
        .unwrap_err();
    assert_eq!(first.code(), Code::Unavailable);
    assert!(
        first.message().contains("retry with the same key"),
        "{}",
        first.message()
    );

    let retried = client
        .create_payin(create_request("order-unknown", "key-unknown"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(retried.reference, "order-unknown");
    assert_eq!(novasend.posts().len(), 1, "never a blind second POST");
    assert_eq!(novasend.payins_created(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_create_that_novasend_never_saw_is_posted_again_with_the_same_key() {
    let novasend = FlakyNovasend::start().await;
    novasend.plan_posts(&[PostBehavior::DropWithoutCreating]);
    let (_redis, app) = start(&novasend).await;
    let mut client = app.client().await;

    let first = client
        .create_payin(create_request("order-lost", "key-lost"))
        .await
        .unwrap_err();
    assert_eq!(first.code(), Code::Unavailable);
    assert_eq!(first.message(), "outcome unknown, retry with the same key");

    let retried = client
        .create_payin(create_request("order-lost", "key-lost"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(retried.reference, "order-lost");
    let posts = novasend.posts();
    assert_eq!(posts.len(), 2);
    let expected = upstream_idempotency_key("create", "key-lost").to_string();
    assert!(posts.iter().all(|p| p.idempotency_key == expected));
    assert_eq!(novasend.payins_created(), 1);
}
