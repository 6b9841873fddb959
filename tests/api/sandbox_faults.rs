//! Faults injected into the built-in sandbox, and the service's safety nets against them.
use crate::common::*;
use crate::sandbox::payin_request;
use crate::sandbox_direct::Direct;
use payments_gateway::sandbox::SandboxConfig;
use serde_json::{Value, json};
use std::time::Duration;
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_faults_show_the_service_s_safety_nets() {
    let redis = RedisServer::start();
    let app = spawn_with_sandbox(
        &redis,
        SandboxConfig {
            expiry: Duration::from_secs(60),
            ..quick_sandbox()
        },
    )
    .await;
    let mut client = app.client().await;
    let sandbox = app.sandbox_url.clone().unwrap();
    let http = reqwest::Client::new();
    let add = |fault: Value| {
        http.post(format!("{sandbox}/_sandbox/faults"))
            .json(&fault)
            .send()
    };

    // An error status, for one request: UNAVAILABLE, then the retry goes through.
    assert_eq!(
        add(json!({"kind": "status", "status": 503, "count": 1, "method": "POST"}))
            .await
            .unwrap()
            .status(),
        201
    );
    let failed = client
        .create_payin(payin_request("fault-1", "+2250700000042"))
        .await
        .unwrap_err();
    assert_eq!(failed.code(), Code::Unavailable);
    client
        .create_payin(payin_request("fault-1", "+2250700000042"))
        .await
        .unwrap();

    // Processed, then the connection dropped: reconciled, one session upstream.
    add(json!({"kind": "drop_after", "count": 1, "method": "POST"}))
        .await
        .unwrap();
    let reconciled = client
        .create_payin(payin_request("fault-2", "+2250700000042"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reconciled.reference, "fault-2");
    let direct = Direct {
        http: http.clone(),
        base: sandbox.clone(),
    };
    assert_eq!(
        direct.get("/v1/payin/fault-2").await.1["id"],
        reconciled.provider_reference.as_str()
    );

    // Dropped before processing: outcome unknown, and the retry creates it once.
    add(json!({"kind": "drop", "count": 1, "method": "POST"}))
        .await
        .unwrap();
    let unknown = client
        .create_payin(payin_request("fault-3", "+2250700000042"))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::Unavailable);
    client
        .create_payin(payin_request("fault-3", "+2250700000042"))
        .await
        .unwrap();

    // A malformed 2xx may hide a created payin: an unknown outcome, reconciled, and the retry
    // creates it once.
    add(json!({"kind": "malformed", "count": 1, "method": "POST"}))
        .await
        .unwrap();
    let malformed = client
        .create_payin(payin_request("fault-4", "+2250700000042"))
        .await
        .unwrap_err();
    assert_eq!(malformed.code(), Code::Unavailable);
    assert!(malformed.message().contains("outcome unknown"));
    client
        .create_payin(payin_request("fault-4", "+2250700000042"))
        .await
        .unwrap();

    // Faults can be listed and cleared.
    add(json!({"kind": "latency", "latency_ms": 10, "share": 0.5}))
        .await
        .unwrap();
    let listed: Vec<Value> = http
        .get(format!("{sandbox}/_sandbox/faults"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        http.delete(format!("{sandbox}/_sandbox/faults"))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        add(json!({"kind": "status", "status": 200}))
            .await
            .unwrap()
            .status(),
        400
    );
}
