//! The built-in sandbox called directly, as the service would: Novasend's authentication,
//! validation, sessions, both response shapes and refund rules.
use payments_gateway::sandbox::{ResponseShape, SandboxConfig};
use serde_json::{Value, json};
use std::time::Duration;

const SANDBOX_KEY: &str = "sandbox-api-key";
const SANDBOX_CLIENT: &str = "sandbox-api-client";

/// Talks to a sandbox directly, as the service would.
pub(crate) struct Direct {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
}

impl Direct {
    fn post(&self, path: &str, key: &str, body: Value) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}{path}", self.base))
            .basic_auth(SANDBOX_KEY, Some(SANDBOX_CLIENT))
            .header("x-idempotency-key", key)
            .json(&body)
    }

    pub(crate) async fn get(&self, path: &str) -> (u16, Value) {
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
