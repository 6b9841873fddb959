//! What the service does with the store when the store misbehaves or forgets.

use crate::common::*;
use std::time::Duration;

/// A webhook that cannot be resolved because Redis is away is answered 503, so that Novasend
/// delivers it again, rather than 200 and lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_is_refused_with_503_while_the_store_is_away() {
    let mut h = Harness::start().await;
    h.novasend_creates().await;
    h.create("order-wh503").await;
    let body =
        serde_json::json!({"event": "payin.confirmed", "data": {"reference": "order-wh503"}})
            .to_string();
    assert_eq!(h.app.post_webhook(&body, None).await, 200);
    h.redis.stop();
    assert_eq!(h.app.post_webhook(&body, None).await, 503);
}

/// The reconciler's schedule forgets a payin whose cache entry expired, instead of keeping
/// (or re-reading) it for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_payin_leaves_the_reconciler_schedule() {
    let mut settings = test_settings();
    settings.payin_ttl = Duration::from_millis(800);
    settings.reconcile_after = Duration::from_millis(900);
    let mut h = Harness::with_settings(settings).await;
    h.novasend_creates().await;
    h.create("order-prune").await;
    let scheduled = |h: &Harness| {
        h.redis
            .command(&["ZSCORE", "pgw:open-payins", "order-prune"])
            != redis::Value::Nil
    };
    assert!(scheduled(&h));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while scheduled(&h) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!scheduled(&h), "the expired payin is still scheduled");
    assert!(h.redis.keys("pgw:payin:order-prune").is_empty());
    assert!(
        h.upstream("GET").await.is_empty(),
        "an expired payin was read back"
    );
}

/// A Redis connection that goes silent (a half-open socket: the peer vanished without a FIN)
/// is dropped after one timed-out call and dialed again, instead of failing every call until
/// the kernel gives up on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_redis_connection_is_replaced() {
    use crate::common::fault_proxy::{FaultProxy, ProxyMode};
    use payments_gateway::proto::GetPayinRequest;
    let redis = RedisServer::start();
    let proxy = FaultProxy::start(([127, 0, 0, 1], redis.port).into()).await;
    let novasend = wiremock::MockServer::start().await;
    let proxied = format!("redis://127.0.0.1:{}", proxy.port());
    let app = TestApp::spawn(test_config(&novasend.uri(), Some(proxied), test_settings())).await;
    let mut client = app.client().await;
    let mut body = payin_2026("order-silent", "processed", "accepted");
    body["transaction"] = transaction("completed");
    wiremock::Mock::given(wiremock::matchers::method("GET"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(body))
        .mount(&novasend)
        .await;
    let get = GetPayinRequest {
        reference: "order-silent".into(),
        refresh: false,
    };
    client.get_payin(get.clone()).await.unwrap();

    // The open connection goes silent for good; new connections are fine again at once.
    proxy.set_mode(ProxyMode::HalfOpen);
    tokio::time::sleep(Duration::from_millis(200)).await;
    proxy.set_mode(ProxyMode::Pass);
    let started = std::time::Instant::now();
    let recovered = loop {
        match client.get_payin(get.clone()).await {
            Ok(_) => break true,
            Err(_) if started.elapsed() < Duration::from_secs(20) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(_) => break false,
        }
    };
    assert!(
        recovered,
        "still failing {:?} after the socket went silent",
        started.elapsed()
    );
}
