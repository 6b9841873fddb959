//! StreamPayinUpdates and webhooks: whichever replica learns a change, every watcher hears it.
use crate::common::*;
use payments_gateway::payments::PaymentsSettings;
use payments_gateway::proto::{self as pb, PayinUpdate, StreamPayinUpdatesRequest};
use payments_gateway::provider::WebhookSecrets;
use secrecy::SecretString;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tonic::{Code, Streaming};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

const NEXT_MESSAGE_LIMIT: Duration = Duration::from_secs(10);

async fn next(stream: &mut Streaming<PayinUpdate>) -> Result<Option<PayinUpdate>, tonic::Status> {
    tokio::time::timeout(NEXT_MESSAGE_LIMIT, stream.message())
        .await
        .expect("a stream never hangs")
}

async fn open(
    client: &mut payments_gateway::proto::payments_service_client::PaymentsServiceClient<
        tonic::transport::Channel,
    >,
    reference: &str,
) -> Streaming<PayinUpdate> {
    client
        .stream_payin_updates(StreamPayinUpdatesRequest {
            reference: reference.into(),
        })
        .await
        .expect("the stream opens")
        .into_inner()
}

/// Novasend now reports `body` for `reference` (replacing what it said before).
async fn novasend_now_says(novasend: &wiremock::MockServer, reference: &str, body: Value) {
    // Earlier mounts would still match in wiremock: start from a clean server (this also
    // forgets the requests received so far).
    novasend.reset().await;
    Mock::given(method("POST"))
        .and(path("/v1/payin/sessions"))
        .respond_with(|request: &wiremock::Request| {
            let body: Value = serde_json::from_slice(&request.body).unwrap();
            ResponseTemplate::new(201).set_body_json(payin_2026(
                body["reference"].as_str().unwrap(),
                "processing",
                "none",
            ))
        })
        .mount(novasend)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/payin/{reference}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .mount(novasend)
        .await;
}

fn succeeded(reference: &str) -> Value {
    let mut body = payin_2026(reference, "processed", "accepted");
    body["transaction"] = transaction("completed");
    body
}

fn webhook(event: &str, reference: &str) -> String {
    json!({ "event": event, "data": { "id": format!("pr_{reference}"), "reference": reference } })
        .to_string()
}

fn fast_polling() -> PaymentsSettings {
    PaymentsSettings {
        poll_interval: Duration::from_millis(300),
        ..test_settings()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_drive_the_stream_from_snapshot_to_terminal() {
    // Polling far away: only webhooks move this payin.
    let settings = PaymentsSettings {
        poll_interval: Duration::from_secs(600),
        ..test_settings()
    };
    let mut h = Harness::with_settings(settings).await;
    h.novasend_creates().await;
    h.create("order-s1").await;
    let mut stream = open(&mut h.client, "order-s1").await;

    let snapshot = next(&mut stream).await.unwrap().unwrap();
    assert_eq!(
        (snapshot.sequence, snapshot.source()),
        (1, pb::UpdateSource::Snapshot)
    );
    assert_eq!(
        snapshot.payin.as_ref().unwrap().status(),
        pb::PayinStatus::AwaitingConfirmation
    );

    novasend_now_says(
        &h.novasend,
        "order-s1",
        payin_2026("order-s1", "processing", "accepted"),
    )
    .await;
    assert_eq!(
        h.app
            .post_webhook(&webhook("payin.confirmed", "order-s1"), None)
            .await,
        200
    );
    let accepted = next(&mut stream).await.unwrap().unwrap();
    assert_eq!(
        (accepted.sequence, accepted.source()),
        (2, pb::UpdateSource::Webhook)
    );
    assert_eq!(
        accepted.previous_status(),
        pb::PayinStatus::AwaitingConfirmation
    );
    assert_eq!(
        accepted.payin.as_ref().unwrap().status(),
        pb::PayinStatus::Processing
    );

    // A duplicate webhook changes nothing: no message.
    assert_eq!(
        h.app
            .post_webhook(&webhook("payin.confirmed", "order-s1"), None)
            .await,
        200
    );
    novasend_now_says(&h.novasend, "order-s1", succeeded("order-s1")).await;
    assert_eq!(
        h.app
            .post_webhook(&webhook("payin.completed", "order-s1"), None)
            .await,
        200
    );
    let done = next(&mut stream).await.unwrap().unwrap();
    assert_eq!(done.sequence, 3, "the duplicate webhook sent nothing");
    assert_eq!(
        done.payin.as_ref().unwrap().status(),
        pb::PayinStatus::Succeeded
    );
    assert_eq!(done.previous_status(), pb::PayinStatus::Processing);
    assert!(
        next(&mut stream).await.unwrap().is_none(),
        "the stream ends with OK after a terminal status"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_that_lies_changes_nothing_and_unknown_or_bad_bodies_are_answered() {
    let mut h = Harness::with_settings(PaymentsSettings {
        poll_interval: Duration::from_secs(600),
        ..test_settings()
    })
    .await;
    h.novasend_creates().await;
    h.create("order-lie").await;
    novasend_now_says(
        &h.novasend,
        "order-lie",
        payin_2026("order-lie", "processing", "none"),
    )
    .await;
    let lie = json!({"event": "payin.completed", "data": {"reference": "order-lie", "status": "processed",
        "transaction": {"status": "completed"}}}).to_string();
    assert_eq!(h.app.post_webhook(&lie, None).await, 200);
    assert_eq!(
        h.app
            .post_webhook(&webhook("payin.confirmed", "nobody-knows"), None)
            .await,
        200
    );
    assert_eq!(h.app.post_webhook("not json", None).await, 400);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let payin = h
        .client
        .get_payin(pb::GetPayinRequest {
            reference: "order-lie".into(),
            refresh: false,
        })
        .await
        .unwrap();
    assert_eq!(
        payin.get_ref().status(),
        pb::PayinStatus::AwaitingConfirmation,
        "only Novasend's GET is believed"
    );
    let gets = h.upstream("GET").await;
    assert_eq!(gets.len(), 1, "one re-read, for the known payin only");
    assert_eq!(gets[0].url.path(), "/v1/payin/order-lie");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_signatures_are_checked_when_a_secret_is_set() {
    let redis = RedisServer::start();
    let novasend = wiremock::MockServer::start().await;
    let mut config = test_config(&novasend.uri(), Some(redis.url()), test_settings());
    // A rotation in progress: the new secret and the old one are both accepted.
    config.providers.novasend.webhook_secrets =
        WebhookSecrets::parse("whsec_new,whsec_old").unwrap();
    let app = TestApp::spawn(config).await;
    let body = webhook("payin.confirmed", "order-sig");
    let signed = |secret: &str| {
        payments_gateway::provider::novasend::webhook::sign(
            &SecretString::from(secret.to_owned()),
            body.as_bytes(),
        )
    };
    assert_eq!(app.post_webhook(&body, None).await, 401);
    assert_eq!(app.post_webhook(&body, Some(&signed("guess"))).await, 401);
    assert_eq!(
        app.post_webhook(&body, Some(&signed("whsec_older"))).await,
        401
    );
    assert_eq!(app.post_webhook(&body, Some("not-hex")).await, 401);
    assert_eq!(
        app.post_webhook(&body, Some(&signed("whsec_new"))).await,
        200
    );
    assert_eq!(
        app.post_webhook(&body, Some(&signed("whsec_old"))).await,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_alone_moves_the_stream() {
    let mut h = Harness::with_settings(fast_polling()).await;
    h.novasend_creates().await;
    h.create("order-poll").await;
    let mut stream = open(&mut h.client, "order-poll").await;
    next(&mut stream).await.unwrap().unwrap();
    novasend_now_says(
        &h.novasend,
        "order-poll",
        payin_2026("order-poll", "processing", "declined"),
    )
    .await;
    let declined = next(&mut stream).await.unwrap().unwrap();
    assert_eq!(
        (declined.sequence, declined.source()),
        (2, pb::UpdateSource::Poll)
    );
    assert_eq!(declined.payin.unwrap().status(), pb::PayinStatus::Declined);
    assert!(next(&mut stream).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_reference_is_not_found_and_a_terminal_payin_ends_after_its_snapshot() {
    let mut h = Harness::start().await;
    let missing = h
        .client
        .stream_payin_updates(StreamPayinUpdatesRequest {
            reference: "ghost".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);

    h.novasend_reports("order-done", succeeded("order-done"))
        .await;
    let mut stream = open(&mut h.client, "order-done").await;
    let snapshot = next(&mut stream).await.unwrap().unwrap();
    assert_eq!(snapshot.payin.unwrap().status(), pb::PayinStatus::Succeeded);
    assert!(next(&mut stream).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_on_one_replica_reaches_a_stream_on_another() {
    let redis = RedisServer::start();
    let novasend = wiremock::MockServer::start().await;
    let slow_polling = PaymentsSettings {
        poll_interval: Duration::from_secs(600),
        ..test_settings()
    };
    let replica_a = TestApp::spawn(test_config(
        &novasend.uri(),
        Some(redis.url()),
        slow_polling.clone(),
    ))
    .await;
    let replica_b = TestApp::spawn(test_config(
        &novasend.uri(),
        Some(redis.url()),
        slow_polling,
    ))
    .await;
    novasend_now_says(
        &novasend,
        "order-x",
        payin_2026("order-x", "processing", "none"),
    )
    .await;
    let mut client_a = replica_a.client().await;
    let mut client_b = replica_b.client().await;
    client_a
        .create_payin(create_request("order-x", "key-x"))
        .await
        .unwrap();

    let mut stream = open(&mut client_b, "order-x").await;
    next(&mut stream).await.unwrap().unwrap();
    let mut delays = Vec::new();
    for (step, body) in [
        payin_2026("order-x", "processing", "accepted"),
        succeeded("order-x"),
    ]
    .into_iter()
    .enumerate()
    {
        novasend_now_says(&novasend, "order-x", body).await;
        let sent = Instant::now();
        assert_eq!(
            replica_a
                .post_webhook(&webhook("payin.update", "order-x"), None)
                .await,
            200
        );
        let update = next(&mut stream).await.unwrap().unwrap();
        delays.push(sent.elapsed());
        assert_eq!(update.sequence, step as u64 + 2);
        assert_eq!(update.source(), pb::UpdateSource::Webhook);
    }
    assert!(next(&mut stream).await.unwrap().is_none());
    eprintln!("figure: webhook on replica A to stream message on replica B: {delays:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_watchers_on_two_replicas_cost_one_upstream_read_per_poll_interval() {
    let redis = RedisServer::start();
    let novasend = wiremock::MockServer::start().await;
    let interval = Duration::from_millis(500);
    let settings = PaymentsSettings {
        poll_interval: interval,
        ..test_settings()
    };
    let replica_a = TestApp::spawn(test_config(
        &novasend.uri(),
        Some(redis.url()),
        settings.clone(),
    ))
    .await;
    let replica_b = TestApp::spawn(test_config(&novasend.uri(), Some(redis.url()), settings)).await;
    novasend_now_says(
        &novasend,
        "order-20",
        payin_2026("order-20", "processing", "none"),
    )
    .await;
    let mut client_a = replica_a.client().await;
    let mut client_b = replica_b.client().await;
    client_a
        .create_payin(create_request("order-20", "key-20"))
        .await
        .unwrap();

    let mut streams = Vec::new();
    for i in 0..20 {
        let client = if i % 2 == 0 {
            &mut client_a
        } else {
            &mut client_b
        };
        let mut stream = open(client, "order-20").await;
        next(&mut stream).await.unwrap().unwrap();
        streams.push(stream);
    }
    assert_eq!(
        replica_a.watchers.open_watches() + replica_b.watchers.open_watches(),
        20
    );
    let gets_before = novasend
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == "GET")
        .count();
    let window = Duration::from_secs(5);
    tokio::time::sleep(window).await;
    let gets = novasend
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == "GET")
        .count()
        - gets_before;
    let intervals = window.as_secs_f64() / interval.as_secs_f64();
    eprintln!(
        "figure: 20 watchers on 2 replicas, {window:?} at a {interval:?} poll interval: {gets} upstream GETs \
         ({:.2} per interval; {:.1} per minute at the default 5 s interval)",
        gets as f64 / intervals,
        gets as f64 / intervals * 12.0
    );
    assert!(
        gets as f64 <= intervals + 1.0,
        "at most one read per interval: {gets}"
    );
    assert!(
        gets as f64 >= intervals / 2.0,
        "polling keeps going: {gets}"
    );

    // The change is seen by every watcher, on both replicas.
    novasend_now_says(
        &novasend,
        "order-20",
        payin_2026("order-20", "expired", "expired"),
    )
    .await;
    for stream in &mut streams {
        let update = next(stream).await.unwrap().unwrap();
        assert_eq!(update.payin.unwrap().status(), pb::PayinStatus::Expired);
        assert!(next(stream).await.unwrap().is_none());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_stream_leaves_nothing_behind() {
    let mut h = Harness::with_settings(fast_polling()).await;
    h.novasend_creates().await;
    h.create("order-cancel").await;
    let mut first = open(&mut h.client, "order-cancel").await;
    let mut second = open(&mut h.client, "order-cancel").await;
    next(&mut first).await.unwrap().unwrap();
    next(&mut second).await.unwrap().unwrap();
    assert_eq!(
        (
            h.app.watchers.open_watches(),
            h.app.watchers.watched_payins()
        ),
        (2, 1)
    );
    drop(first);
    drop(second);
    let deadline = Instant::now() + Duration::from_secs(5);
    while h.app.watchers.open_watches() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        (
            h.app.watchers.open_watches(),
            h.app.watchers.watched_payins()
        ),
        (0, 0)
    );
    // With the watch gone, its poller is gone: no more reads once the reconciler's first
    // turn is still far off.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let gets = h.upstream("GET").await.len();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        h.upstream("GET").await.len(),
        gets,
        "polling stopped with the last watcher"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_survives_a_redis_restart_or_ends_with_unavailable() {
    let mut h = Harness::with_settings(fast_polling()).await;
    h.novasend_creates().await;
    h.create("order-rr").await;
    let mut stream = open(&mut h.client, "order-rr").await;
    next(&mut stream).await.unwrap().unwrap();

    h.redis.stop();
    tokio::time::sleep(Duration::from_millis(500)).await;
    h.redis.restart();
    novasend_now_says(
        &h.novasend,
        "order-rr",
        payin_2026("order-rr", "processing", "declined"),
    )
    .await;
    match next(&mut stream).await {
        Ok(Some(update)) => assert_eq!(update.payin.unwrap().status(), pb::PayinStatus::Declined),
        Err(status) => assert_eq!(status.code(), Code::Unavailable),
        Ok(None) => panic!("the stream ended without a terminal status"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_left_open_at_shutdown_ends_with_unavailable_after_the_drain_period() {
    let mut h = Harness::with_settings(PaymentsSettings {
        poll_interval: Duration::from_secs(600),
        ..test_settings()
    })
    .await;
    h.novasend_creates().await;
    h.create("order-sd").await;
    let mut stream = open(&mut h.client, "order-sd").await;
    next(&mut stream).await.unwrap().unwrap();
    let Harness {
        app,
        redis: _redis,
        novasend: _novasend,
        client: _client,
    } = h;
    let started = Instant::now();
    let stopping = tokio::spawn(app.stop());
    let status = next(&mut stream).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "the stream had the drain period (1 s in tests)"
    );
    stopping.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reconciler_advances_a_payin_nobody_watches() {
    let settings = PaymentsSettings {
        reconcile_after: Duration::from_millis(300),
        ..fast_polling()
    };
    let mut h = Harness::with_settings(settings).await;
    h.novasend_creates().await;
    h.create("order-alone").await;
    assert_eq!(
        h.redis.command(&["ZCARD", "pgw:open-payins"]),
        redis::Value::Int(1)
    );
    h.novasend_reports(
        "order-alone",
        payin_2026("order-alone", "processing", "declined"),
    )
    .await;

    // No stream, no GetPayin: only the reconciler can notice.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let cached = h.redis.command(&["HGET", "pgw:payin:order-alone", "data"]);
        let redis::Value::BulkString(bytes) = cached else {
            panic!("the payin is cached")
        };
        let payin: Value = serde_json::from_slice(&bytes).unwrap();
        if payin["status"] == "declined" {
            assert_eq!(payin["last_source"], "poll");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the reconciler never read the payin"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        h.redis.command(&["ZCARD", "pgw:open-payins"]),
        redis::Value::Int(0),
        "a terminal payin leaves the schedule"
    );
    assert_eq!(h.upstream("GET").await.len(), 1);
}
