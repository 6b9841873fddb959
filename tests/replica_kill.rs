//! A replica killed with `kill -9` in the middle of a create: the same-key retry on another
//! replica takes the record over once the dead attempt's lease runs out (seconds, not the
//! minutes an attempt may legitimately run), reconciles, and Novasend sees the same key.

mod common;

use common::replica::Replica;
use common::*;
use payments_gateway::proto::payments_service_client::PaymentsServiceClient;
use std::time::{Duration, Instant};
use tonic::Code;
use wiremock::matchers::method;
use wiremock::{Mock, ResponseTemplate};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_orphaned_by_kill_9_is_taken_over_within_seconds() {
    let redis = RedisServer::start();
    let novasend = wiremock::MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(payin_2026("order-k9", "processing", "none"))
                .set_delay(Duration::from_secs(2)),
        )
        .mount(&novasend)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(404).set_body_json(serde_json::json!({})))
        .mount(&novasend)
        .await;

    let mut run_dir = common::replica::RunDir::new("replica-kill");
    let env = [
        ("PAYMENTS_REDIS_URL", redis.url()),
        ("NOVASEND_BASE_URL", novasend.uri()),
        ("NOVASEND_API_KEY", API_KEY.to_owned()),
        ("NOVASEND_API_CLIENT", API_CLIENT.to_owned()),
        // An attempt may run for minutes (a POST and its reconciliation at 10 s each).
        ("PAYMENTS_UPSTREAM_TIMEOUT", "10s".to_owned()),
    ]
    .map(|(k, v)| (k.to_owned(), v));
    let mut doomed = Replica::new("doomed", &run_dir.path, &env, free_port(), free_port());
    if let Err(e) = doomed.start().await {
        run_dir.keep();
        panic!("{e}");
    }
    let mut doomed_client = PaymentsServiceClient::connect(doomed.grpc_url())
        .await
        .expect("the replica serves");
    let orphaned = tokio::spawn(async move {
        doomed_client
            .create_payin(create_request("order-k9", "key-k9"))
            .await
    });
    // The POST is at Novasend when the replica dies.
    let deadline = Instant::now() + Duration::from_secs(10);
    while novasend.received_requests().await.unwrap().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    doomed.kill9();
    let killed_at = Instant::now();
    // The connection died under the call: tonic reports it as a transport error.
    let cut = orphaned.await.unwrap().unwrap_err();
    assert!(
        matches!(cut.code(), Code::Unavailable | Code::Unknown),
        "{cut:?}"
    );

    let mut settings = test_settings();
    settings.upstream_timeout = Duration::from_secs(5);
    let survivor = TestApp::spawn(test_config(&novasend.uri(), Some(redis.url()), settings)).await;
    let mut client = survivor.client().await;
    let mut answers = Vec::new();
    let payin = loop {
        match client
            .create_payin(create_request("order-k9", "key-k9"))
            .await
        {
            Ok(payin) => break payin.into_inner(),
            Err(status) => {
                assert!(
                    matches!(status.code(), Code::Aborted | Code::Unavailable),
                    "{status:?}"
                );
                answers.push(status.code());
                assert!(
                    killed_at.elapsed() < Duration::from_secs(25),
                    "the dead attempt's record was not taken over: {answers:?}"
                );
            }
        }
    };
    println!(
        "taken over {:.1} s after kill -9 ({} retries)",
        killed_at.elapsed().as_secs_f64(),
        answers.len()
    );
    assert_eq!(payin.reference, "order-k9");
    let posts: Vec<_> = novasend
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.method.as_str() == "POST")
        .collect();
    assert_eq!(posts.len(), 2, "the orphan's POST and the takeover's");
    assert_eq!(
        posts[0].headers.get("x-idempotency-key"),
        posts[1].headers.get("x-idempotency-key")
    );
}
