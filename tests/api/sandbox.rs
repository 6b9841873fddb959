//! The built-in sandbox: faithful to Novasend's documents, driving real payin lifecycles.
use crate::common::*;
use payments_gateway::proto::{self as pb, PayinUpdate, StreamPayinUpdatesRequest};
use payments_gateway::provider::WebhookSecrets;
use payments_gateway::sandbox::{ResponseShape, SandboxConfig};
use serde_json::{Value, json};
use std::time::Duration;
use tonic::Code;

const SANDBOX_KEY: &str = "sandbox-api-key";
const SANDBOX_CLIENT: &str = "sandbox-api-client";

/// Follows a payin's stream to its end; returns every status it reported.
pub(crate) async fn statuses_until_final(
    client: &mut pb::payments_service_client::PaymentsServiceClient<tonic::transport::Channel>,
    reference: &str,
) -> Vec<pb::PayinStatus> {
    let mut stream = client
        .stream_payin_updates(StreamPayinUpdatesRequest {
            reference: reference.into(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut seen = Vec::new();
    loop {
        let message: Option<PayinUpdate> =
            tokio::time::timeout(Duration::from_secs(10), stream.message())
                .await
                .expect("the stream moves")
                .unwrap();
        match message {
            Some(update) => seen.push(update.payin.unwrap().status()),
            None => return seen,
        }
    }
}

fn payin_request(reference: &str, msisdn: &str) -> pb::CreatePayinRequest {
    pb::CreatePayinRequest {
        msisdn: msisdn.into(),
        ..create_request(reference, &format!("key-{reference}"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn magic_numbers_play_their_scenario_end_to_end() {
    let redis = RedisServer::start();
    let app = spawn_with_sandbox(&redis, quick_sandbox()).await;
    let mut client = app.client().await;
    use pb::PayinStatus::*;
    for (suffix, last) in [
        ("0000", Succeeded),
        ("0001", Declined),
        ("0002", Expired),
        ("0003", Failed),
    ] {
        let reference = format!("magic-{suffix}");
        let created = client
            .create_payin(payin_request(&reference, &format!("+22507000{suffix}")))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(created.status(), AwaitingConfirmation);
        let seen = statuses_until_final(&mut client, &reference).await;
        assert_eq!(seen.last(), Some(&last), "{suffix}: {seen:?}");
    }
    // 0004 never answers, and never expires either (the expiry here is 1 s).
    client
        .create_payin(payin_request("magic-0004", "+2250700000004"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let silent = client
        .get_payin(pb::GetPayinRequest {
            reference: "magic-0004".into(),
            refresh: true,
        })
        .await
        .unwrap();
    assert_eq!(silent.get_ref().status(), AwaitingConfirmation);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_payment_page_accepts_declines_and_expires() {
    let redis = RedisServer::start();
    let app = spawn_with_sandbox(&redis, quick_sandbox()).await;
    let mut client = app.client().await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let accepted = client
        .create_payin(payin_request("page-yes", "+2250700000042"))
        .await
        .unwrap()
        .into_inner();
    let page = http
        .get(&accepted.payment_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("**********0042") && !page.contains("+2250700000042"),
        "the payer is masked"
    );
    assert!(page.contains(">300 XOF<") && page.contains(">6 XOF<") && page.contains(">306 XOF<"));
    assert!(!page.contains("<script"), "works without JavaScript");
    let answer = http
        .post(format!("{}/accept", accepted.payment_url))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 303);
    let seen = statuses_until_final(&mut client, "page-yes").await;
    assert_eq!(seen.last(), Some(&pb::PayinStatus::Succeeded), "{seen:?}");

    let declined = client
        .create_payin(payin_request("page-no", "+2250700000043"))
        .await
        .unwrap()
        .into_inner();
    http.post(format!("{}/decline", declined.payment_url))
        .send()
        .await
        .unwrap();
    assert_eq!(
        statuses_until_final(&mut client, "page-no").await.last(),
        Some(&pb::PayinStatus::Declined)
    );

    client
        .create_payin(payin_request("page-late", "+2250700000044"))
        .await
        .unwrap();
    assert_eq!(
        statuses_until_final(&mut client, "page-late").await.last(),
        Some(&pb::PayinStatus::Expired)
    );
}

/// Talks to a sandbox directly, as the service would.
struct Direct {
    http: reqwest::Client,
    base: String,
}

impl Direct {
    fn post(&self, path: &str, key: &str, body: Value) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}{path}", self.base))
            .basic_auth(SANDBOX_KEY, Some(SANDBOX_CLIENT))
            .header("x-idempotency-key", key)
            .json(&body)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .basic_auth(SANDBOX_KEY, Some(SANDBOX_CLIENT))
            .send()
            .await
            .unwrap();
        (
            response.status().as_u16(),
            response.json().await.unwrap_or(Value::Null),
        )
    }
}

async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.unwrap();
    (
        response.status().as_u16(),
        response.json().await.unwrap_or(Value::Null),
    )
}

fn session(reference: &str, msisdn: &str, country: &str) -> Value {
    json!({"reference": reference, "amount": 301, "msisdn": msisdn, "customerName": "Awa", "country": country})
}

fn key() -> String {
    uuid::Uuid::new_v4().to_string()
}

async fn standalone(shape: ResponseShape) -> (payments_gateway::sandbox::SandboxHandle, Direct) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = SandboxConfig {
        shape,
        step_delay: Duration::from_millis(50),
        ..Default::default()
    };
    let handle = payments_gateway::sandbox::start(listener, config).unwrap();
    let direct = Direct {
        http: reqwest::Client::new(),
        base: handle.base_url(),
    };
    (handle, direct)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_speaks_novasend() {
    let (_sandbox, s) = standalone(ResponseShape::Shape2026).await;
    // Basic auth.
    let unauthenticated = s
        .http
        .post(format!("{}/v1/payin/sessions", s.base))
        .header("x-idempotency-key", key())
        .json(&session("a", "+2250700000042", "CI"));
    assert_eq!(send(unauthenticated).await.0, 401);
    let wrong = s
        .http
        .get(format!("{}/v1/payin/a", s.base))
        .basic_auth(SANDBOX_KEY, Some("wrong"));
    assert_eq!(wrong.send().await.unwrap().status(), 401);
    // X-Idempotency-Key must be a UUID.
    assert_eq!(
        send(s.post(
            "/v1/payin/sessions",
            "not-a-uuid",
            session("a", "+2250700000042", "CI")
        ))
        .await
        .0,
        400
    );
    // Fields are checked, in the caller's language.
    let bad = json!({"reference": "", "amount": 0, "msisdn": "0700", "customerName": " ", "country": "FR"});
    let (status, body) = send(
        s.post("/v1/payin/sessions", &key(), bad.clone())
            .header("accept-language", "fr"),
    )
    .await;
    assert_eq!(status, 422);
    let fields: Vec<&str> = body["subErrors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        vec!["reference", "amount", "msisdn", "customerName", "country"]
    );
    assert_eq!(body["message"], "La validation a échoué");
    assert!(body["correlationId"].is_string());

    // A session: fee 2 % rounded up, currency by country, the 2026 shape.
    let k1 = key();
    let (status, created) = send(s.post(
        "/v1/payin/sessions",
        &k1,
        session("ref-1", "+2250700000042", "CM"),
    ))
    .await;
    assert_eq!(status, 201);
    assert_eq!(
        (created["fee"].as_i64(), created["chargedAmount"].as_i64()),
        (Some(7), Some(308))
    );
    assert_eq!(created["currency"], "XAF");
    assert!(created["id"].as_str().unwrap().starts_with("pr_"));
    assert_eq!(created["reference"], "ref-1");
    assert_eq!(created["customer"]["phoneNumber"], "+2250700000042");
    // Same key, same body: the same session. Same reference, another key: 409.
    let (_, again) = send(s.post(
        "/v1/payin/sessions",
        &k1,
        session("ref-1", "+2250700000042", "CM"),
    ))
    .await;
    assert_eq!(again["id"], created["id"]);
    assert_eq!(
        send(s.post(
            "/v1/payin/sessions",
            &key(),
            session("ref-1", "+2250700000042", "CM")
        ))
        .await
        .0,
        409
    );
    assert_eq!(
        send(s.post(
            "/v1/payin/sessions",
            &k1,
            session("ref-2", "+2250700000042", "CM")
        ))
        .await
        .0,
        409
    );
    // Read by merchant or provider reference.
    assert_eq!(s.get("/v1/payin/ref-1").await.1["id"], created["id"]);
    assert_eq!(
        s.get(&format!("/v1/payin/{}", created["id"].as_str().unwrap()))
            .await
            .1["reference"],
        "ref-1"
    );
    assert_eq!(s.get("/v1/payin/nope").await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_speaks_the_2025_shape_and_enforces_refund_rules() {
    let (_sandbox, s) = standalone(ResponseShape::Shape2025).await;
    let (_, created) = send(s.post(
        "/v1/payin/sessions",
        &key(),
        session("ref-25", "+2250700000000", "CI"),
    ))
    .await;
    let api_reference = created["reference"].as_str().unwrap().to_owned();
    assert!(api_reference.starts_with("tr_"));
    assert_eq!(created["customerReference"], "ref-25");
    assert_eq!(created["phoneNumber"], "+2250700000000");
    assert!(created.get("id").is_none());

    let refund = |amount: Option<i64>| {
        let mut body = json!({"reason": "customer asked", "externalReference": "ext-1"});
        if let Some(a) = amount {
            body["amount"] = json!(a);
        }
        s.post("/v1/payin/ref-25/refund", &key(), body)
    };
    assert_eq!(send(refund(None)).await.0, 422, "not completed yet");
    // 0000 completes by itself, a step apart each.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (_, done) = s.get(&format!("/v1/payin/{api_reference}")).await;
    assert_eq!(done["transaction"]["status"], "completed");
    assert_eq!(send(refund(Some(302))).await.0, 422, "more than the payin");
    assert_eq!(
        send(s.post("/v1/payin/ref-25/refund", &key(), json!({})))
            .await
            .0,
        422,
        "a reason is required"
    );
    let (status, partial) = send(refund(Some(100))).await;
    assert_eq!(status, 201);
    assert_eq!(
        (partial["refundType"].as_str(), partial["amount"].as_i64()),
        (Some("partial"), Some(100))
    );
    assert_eq!(partial["originalReference"], api_reference.as_str());
    assert_eq!(send(refund(None)).await.0, 409, "once only");
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_webhooks_are_signed_and_the_service_checks_them() {
    let redis = RedisServer::start();
    let mut config = test_config("http://unused.invalid", Some(redis.url()), test_settings());
    config.providers.novasend.api = None;
    config.sandbox = quick_sandbox();
    let secret = secrecy::SecretString::from("whsec_shared");
    config.providers.novasend.webhook_secrets = WebhookSecrets::one(secret.clone());
    config.sandbox.webhook_secret = Some(secret);
    // Polling far away: only signed webhooks can move the stream.
    config.payments.poll_interval = Duration::from_secs(600);
    let app = TestApp::spawn(config).await;
    let mut client = app.client().await;
    client
        .create_payin(payin_request("signed", "+2250700000000"))
        .await
        .unwrap();
    let seen = statuses_until_final(&mut client, "signed").await;
    assert_eq!(seen.last(), Some(&pb::PayinStatus::Succeeded), "{seen:?}");
}
