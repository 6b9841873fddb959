//! HUB2 regressions found by adversarial reviews, each a test that failed before its fix:
//! a retry never switches provider, a refused payment step forgets its intent, an attempt
//! still in flight is never doubled, and a key keeps its provider when the routes change.

use crate::common::*;
use crate::hub2_fake::*;
use payments_gateway::domain::Routes;
use payments_gateway::proto::{self as pb, CreatePayinRequest, GetPayinRequest};
use serde_json::json;
use std::time::Duration;
use tonic::Code;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

/// After a refused HUB2 payment step, a new key sending the reference to Novasend gets a
/// payin that names Novasend, and later reads go to Novasend, never to HUB2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_novasend_payin_after_a_refused_hub2_step_names_its_real_provider() {
    let mut s = setup(Duration::from_secs(5)).await;
    Mock::given(method("POST"))
        .and(path("/payment-intents/pi_1/payments"))
        .respond_with(ResponseTemplate::new(422).set_body_json(json!({"message": "bad"})))
        .mount(&s.hub2.server)
        .await;
    let refused = s
        .client
        .create_payin(hub2_request("key-a"))
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        Code::InvalidArgument,
        "{}",
        refused.message()
    );
    // The merchant fixes it by sending the reference to Novasend, with a new key.
    Mock::given(method("POST"))
        .and(path("/v1/payin/sessions"))
        .respond_with(ResponseTemplate::new(201).set_body_json(payin_2026(
            "order-h2",
            "processing",
            "none",
        )))
        .mount(&s.novasend)
        .await;
    let payin = s
        .client
        .create_payin(CreatePayinRequest {
            provider: pb::Provider::Novasend as i32,
            ..create_request("order-h2", "key-b")
        })
        .await
        .unwrap()
        .into_inner();
    // What a later read does with it: it asks HUB2 for Novasend's id.
    let _ = s
        .client
        .get_payin(GetPayinRequest {
            reference: "order-h2".into(),
            refresh: true,
        })
        .await;
    let asked_hub2 = s
        .hub2
        .requests("GET", "/payment-intents/pr_order-h2")
        .await
        .len();
    assert_eq!(
        asked_hub2, 0,
        "a Novasend payin was read from HUB2 ({asked_hub2} GETs)"
    );
    assert_eq!(
        (payin.provider(), payin.provider_reference.as_str()),
        (pb::Provider::Novasend, "pr_order-h2"),
        "the payin Novasend created must name Novasend"
    );
}

/// A same-key retry of an unknown Novasend create that lands on a replica routing the
/// country to HUB2 (a rolling change of PAYMENTS_ROUTES) stays with Novasend, which may
/// hold the first payin: nothing is sent to HUB2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_never_switches_provider_after_an_unknown_outcome() {
    let redis = RedisServer::start();
    let novasend = MockServer::start().await;
    let hub2 = Hub2::start().await;
    hub2.attempts_answered_with(ResponseTemplate::new(200), 0)
        .await;
    // Novasend: the POST's outcome is unknown (500) and the reconciling read fails too.
    Mock::given(method("POST"))
        .and(path("/v1/payin/sessions"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&novasend)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/payin/order-h2"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&novasend)
        .await;
    let mut settings = test_settings();
    settings.upstream_timeout = Duration::from_secs(2);
    // Old replica: everything to Novasend.
    let old = TestApp::spawn(test_config(
        &novasend.uri(),
        Some(redis.url()),
        settings.clone(),
    ))
    .await;
    // New replica: CI to HUB2.
    let mut config = test_config(&novasend.uri(), Some(redis.url()), settings);
    config.providers.hub2.api = Some(hub2_config(&hub2, Duration::from_secs(2)));
    config.routes = Routes::parse("CI:hub2,*:novasend").unwrap();
    let new = TestApp::spawn(config).await;

    let unknown = old
        .client()
        .await
        .create_payin(hub2_request("key-r"))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::Unavailable, "{}", unknown.message());
    let novasend_posts = novasend
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.method.as_str() == "POST")
        .count();
    assert_eq!(novasend_posts, 1, "Novasend may hold a payin for order-h2");

    // The caller retries with the same key, as told; it lands on the new replica.
    let _ = new.client().await.create_payin(hub2_request("key-r")).await;
    let attempts = hub2
        .requests("POST", "/payment-intents/pi_1/payments")
        .await
        .len();
    assert_eq!(
        attempts, 0,
        "a HUB2 payment attempt was sent for a reference whose Novasend create is still unknown"
    );
}

/// The payment step times out on our side while HUB2 is still working on it: the record
/// stays held until that attempt would surely show in `payments[]`, so the caller's
/// immediate retry cannot send a second one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_attempt_still_in_flight_is_not_doubled_by_a_retry() {
    let mut s = setup(Duration::from_millis(500)).await;
    let state = s.hub2.intent.clone();
    Mock::given(method("POST"))
        .and(path("/payment-intents/pi_1/payments"))
        .respond_with(move |_: &Request| {
            // HUB2 is slow: it records the attempt 800 ms later, answers after 1.5 s.
            let later = state.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(800));
                let mut intent = later.lock().unwrap();
                intent
                    .payments
                    .push(json!({"id": "pa_x", "status": "pending"}));
                intent.status = "processing".into();
            });
            let body = state.lock().unwrap().json();
            ResponseTemplate::new(200)
                .set_body_json(body)
                .set_delay(Duration::from_millis(1500))
        })
        .mount(&s.hub2.server)
        .await;
    let first = s
        .client
        .create_payin(hub2_request("key-slow"))
        .await
        .unwrap_err();
    assert_eq!(first.code(), Code::Unavailable, "{}", first.message());
    // "outcome unknown, retry with the same key": the caller does so at once.
    let _ = s.client.create_payin(hub2_request("key-slow")).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let attempts = s
        .hub2
        .requests("POST", "/payment-intents/pi_1/payments")
        .await
        .len();
    assert_eq!(attempts, 1, "two payment attempts for one intent");
}

/// A refused payment step frees the reference and forgets its intent: a new key's create
/// opens a fresh intent and pays on it, never answered with the abandoned one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_key_after_a_refused_step_is_not_answered_with_the_old_intent() {
    let mut s = setup(Duration::from_secs(5)).await;
    let refuse = Mock::given(method("POST"))
        .and(path("/payment-intents/pi_1/payments"))
        .respond_with(ResponseTemplate::new(422).set_body_json(json!({"message": "bad"})))
        .up_to_n_times(1)
        .mount_as_scoped(&s.hub2.server)
        .await;
    let refused = s
        .client
        .create_payin(hub2_request("key-1"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    drop(refuse);
    // The refused intent charges no one: it is forgotten, not kept to answer later creates.
    let gone = s
        .client
        .get_payin(GetPayinRequest {
            reference: "order-h2".into(),
            refresh: false,
        })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
    // The merchant fixed the cause and retries the reference with a new key.
    s.hub2
        .attempts_answered_with(ResponseTemplate::new(200), 0)
        .await;
    let created = s.client.create_payin(hub2_request("key-2")).await;
    let attempts = s
        .hub2
        .requests("POST", "/payment-intents/pi_1/payments")
        .await
        .len()
        + s.hub2
            .requests("POST", "/payment-intents/pi_2/payments")
            .await
            .len();
    assert_eq!(
        (
            created.as_ref().map(|p| p.get_ref().status()).ok(),
            attempts
        ),
        (Some(pb::PayinStatus::AwaitingConfirmation), 2),
        "{created:?}"
    );
}

/// Routes that change under a key's life: the same request with the same key is replayed
/// (not refused by the new route's checks), and once its record has expired while its
/// reference stays claimed, a retry still goes to the provider holding the payin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_keeps_its_provider_when_the_routes_change() {
    let redis = RedisServer::start();
    let novasend = MockServer::start().await;
    let hub2 = Hub2::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/payin/sessions"))
        .respond_with(ResponseTemplate::new(201).set_body_json(payin_2026(
            "order-h2",
            "processing",
            "none",
        )))
        .mount(&novasend)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/payin/order-h2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(payin_2026(
            "order-h2",
            "processing",
            "none",
        )))
        .mount(&novasend)
        .await;
    let old = TestApp::spawn(test_config(
        &novasend.uri(),
        Some(redis.url()),
        test_settings(),
    ))
    .await;
    let mut config = test_config(&novasend.uri(), Some(redis.url()), test_settings());
    config.providers.hub2.api = Some(hub2_config(&hub2, Duration::from_secs(2)));
    config.routes = Routes::parse("CI:hub2,*:novasend").unwrap();
    let new = TestApp::spawn(config).await;

    // Made when CI went to Novasend (no operator: Novasend needs none).
    let first = create_request("order-h2", "key-k");
    let created = old
        .client()
        .await
        .create_payin(first.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.provider(), pb::Provider::Novasend);
    // Now CI goes to HUB2, which needs an operator: the same request is still replayed.
    let replayed = new
        .client()
        .await
        .create_payin(first)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(replayed, created);

    // The record expires (24 h) while the reference stays claimed with its payin (30 days).
    redis.command(&["DEL", "pgw:idem:create:key-k"]);
    let later = CreatePayinRequest {
        operator: "orange".into(),
        ..create_request("order-h2", "key-k")
    };
    let again = new
        .client()
        .await
        .create_payin(later)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.provider(), pb::Provider::Novasend);
    assert_eq!(again.provider_reference, created.provider_reference);
    assert!(
        hub2.server.received_requests().await.unwrap().is_empty(),
        "nothing was asked of HUB2"
    );
}
