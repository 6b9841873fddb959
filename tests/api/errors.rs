//! Contract §4: each upstream outcome maps to its gRPC code.
use crate::common::*;
use payments_gateway::proto::GetPayinRequest;
use serde_json::json;
use std::time::Duration;
use tonic::Code;
use wiremock::matchers::method;
use wiremock::{Mock, ResponseTemplate};

async fn create_against(template: ResponseTemplate) -> (Harness, tonic::Status) {
    let mut h = Harness::start().await;
    Mock::given(method("POST"))
        .respond_with(template)
        .mount(&h.novasend)
        .await;
    let status = h
        .client
        .create_payin(create_request("order-err", "key-err"))
        .await
        .unwrap_err();
    (h, status)
}

fn novasend_error(status: u16, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "error": "Error", "statusCode": status, "correlationId": "corr-1", "message": message, "subErrors": []
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn novasend_outcomes_map_to_the_contract_codes() {
    let cases = [
        (novasend_error(500, "boom"), Code::Unavailable, None),
        (novasend_error(502, "bad gateway"), Code::Unavailable, None),
        (
            novasend_error(429, "slow down"),
            Code::ResourceExhausted,
            Some("slow down"),
        ),
        (
            novasend_error(400, "amount must be an integer"),
            Code::InvalidArgument,
            Some("amount must be an integer"),
        ),
        (
            novasend_error(422, "customerName is too short"),
            Code::InvalidArgument,
            Some("customerName is too short"),
        ),
        (
            novasend_error(409, "duplicate reference"),
            Code::AlreadyExists,
            None,
        ),
        (
            novasend_error(401, "bad credentials"),
            Code::Internal,
            Some("credentials"),
        ),
        (
            novasend_error(403, "forbidden"),
            Code::Internal,
            Some("credentials"),
        ),
        // A 2xx we cannot read may have created the payin: an unknown outcome (§3).
        (
            ResponseTemplate::new(201).set_body_string("{not json"),
            Code::Unavailable,
            Some("outcome unknown"),
        ),
        (
            ResponseTemplate::new(201).set_body_json(json!({"type": "payin"})),
            Code::Unavailable,
            Some("outcome unknown"),
        ),
    ];
    for (template, code, fragment) in cases {
        let (h, status) = create_against(template).await;
        assert_eq!(status.code(), code, "{status:?}");
        if let Some(fragment) = fragment {
            assert!(status.message().contains(fragment), "{}", status.message());
        }
        for secret in [API_KEY, API_CLIENT, "+2250700000042"] {
            assert!(!status.message().contains(secret));
        }
        drop(h);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn novasend_timeout_and_refused_connection_are_unavailable() {
    let mut settings = test_settings();
    settings.upstream_timeout = Duration::from_millis(300);
    let mut h = Harness::with_settings(settings.clone()).await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(payin_2026("order-late", "processing", "none"))
                .set_delay(Duration::from_secs(2)),
        )
        .mount(&h.novasend)
        .await;
    let late = h
        .client
        .create_payin(create_request("order-late", "key-late"))
        .await
        .unwrap_err();
    assert_eq!(late.code(), Code::Unavailable);

    let closed_port = free_port();
    let redis = RedisServer::start();
    let app = TestApp::spawn(test_config(
        &format!("http://127.0.0.1:{closed_port}"),
        Some(redis.url()),
        settings,
    ))
    .await;
    let mut client = app.client().await;
    let refused = client
        .create_payin(create_request("order-refused", "key-refused"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable);
    let get = client
        .get_payin(GetPayinRequest {
            reference: "order-refused".into(),
            refresh: true,
        })
        .await
        .unwrap_err();
    assert_eq!(get.code(), Code::Unavailable);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn novasend_messages_reach_the_caller_in_french_and_accept_language_is_forwarded() {
    let mut h = Harness::start().await;
    Mock::given(method("POST"))
        .respond_with(novasend_error(422, "Le montant est invalide"))
        .mount(&h.novasend)
        .await;
    let status = h
        .client
        .create_payin(with_metadata(
            create_request("order-fr", "key-fr"),
            &[("accept-language", "fr")],
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        status.message(),
        "Novasend a refusé la requête: Le montant est invalide"
    );
    let post = &h.upstream("POST").await[0];
    assert_eq!(post.headers.get("accept-language").unwrap(), "fr");
}
