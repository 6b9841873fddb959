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
