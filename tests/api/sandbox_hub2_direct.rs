//! The sandbox's HUB2, called directly as the service would: its headers, bodies, refusals,
//! the one attempt per intent, the token read, and the webhooks it signs.

use payments_gateway::provider::WebhookSecrets;
use payments_gateway::provider::webhook_secrets::hmac_hex;
use payments_gateway::sandbox::{Hub2SandboxConfig, SandboxConfig, SandboxHandle};
use serde_json::{Value, json};
use std::time::Duration;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

struct Hub2 {
    _handle: SandboxHandle,
    http: reqwest::Client,
    base: String,
}

impl Hub2 {
    async fn start(hub2: Hub2SandboxConfig) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let config = SandboxConfig {
            step_delay: Duration::from_millis(50),
            hub2,
            ..Default::default()
        };
        let handle = payments_gateway::sandbox::start(listener, config).unwrap();
        Hub2 {
            base: format!("{}/hub2", handle.base_url()),
            _handle: handle,
            http: reqwest::Client::new(),
        }
    }

    fn request(&self, verb: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(verb, format!("{}{path}", self.base))
            .header("ApiKey", "sandbox-hub2-api-key")
            .header("MerchantId", "sandbox-merchant")
            .header("Environment", "sandbox")
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        send(self.request(reqwest::Method::POST, path).json(&body)).await
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        send(self.request(reqwest::Method::GET, path)).await
    }
}

async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn intent_body(reference: &str) -> Value {
    json!({"customerReference": "+2250700000042", "purchaseReference": reference,
           "amount": 1500, "currency": "XOF"})
}

fn attempt_body(token: &str, operator: &str, msisdn: &str) -> Value {
    json!({"token": token, "paymentMethod": "mobile_money", "country": "CI", "provider": operator,
           "mobileMoney": {"msisdn": msisdn, "onSuccessRedirectionUrl": "https://shop.test/ok",
                           "onFailedRedirectionUrl": "https://shop.test/ko"}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_speaks_hub2() {
    let s = Hub2::start(Hub2SandboxConfig::default()).await;
    // Credentials and mode.
    for (key, merchant, environment, status) in [
        ("wrong", "sandbox-merchant", "sandbox", 401),
        ("sandbox-hub2-api-key", "other", "sandbox", 401),
        ("sandbox-hub2-api-key", "sandbox-merchant", "live", 401),
        ("sandbox-hub2-api-key", "sandbox-merchant", "prod", 400),
    ] {
        let request = s
            .http
            .post(format!("{}/payment-intents", s.base))
            .header("ApiKey", key)
            .header("MerchantId", merchant)
            .header("Environment", environment)
            .json(&intent_body("h2-auth"));
        assert_eq!(
            send(request).await.0,
            status,
            "{key} {merchant} {environment}"
        );
    }
    // Bodies.
    let (status, body) = s
        .post(
            "/payment-intents",
            json!({"purchaseReference": "", "amount": 0, "currency": "EUR"}),
        )
        .await;
    assert_eq!(status, 422);
    let message = body["message"].as_str().unwrap();
    for field in [
        "purchaseReference",
        "customerReference",
        "amount",
        "currency",
    ] {
        assert!(message.contains(field), "{message}");
    }
    let not_json = s
        .request(reqwest::Method::POST, "/payment-intents")
        .body("nope");
    assert_eq!(send(not_json).await.0, 422);

    // An intent, as the seed document describes it.
    let (status, intent) = s.post("/payment-intents", intent_body("h2-1")).await;
    assert_eq!(status, 201);
    let id = intent["id"].as_str().unwrap().to_owned();
    let token = intent["token"].as_str().unwrap().to_owned();
    assert!(id.starts_with("pi_"));
    assert_eq!(
        (
            &intent["status"],
            &intent["payments"],
            &intent["merchantId"],
            &intent["mode"]
        ),
        (
            &json!("payment_required"),
            &json!([]),
            &json!("sandbox-merchant"),
            &json!("sandbox")
        )
    );
    // The same purchase reference opens another intent (a lost answer's retry does).
    let (status, again) = s.post("/payment-intents", intent_body("h2-1")).await;
    assert_eq!(status, 201);
    assert_ne!(again["id"], id.as_str());
    assert_eq!(
        s.get(&format!("/payment-intents/{id}")).await.1["id"],
        id.as_str()
    );
    assert_eq!(s.get("/payment-intents/pi_nope").await.0, 404);
    // With its token, a client-side application reads it without the key.
    let by_token = s
        .http
        .get(format!("{}/payment-intents/{id}?token={token}", s.base));
    assert_eq!(send(by_token).await.0, 200);
    let bad_token = s
        .http
        .get(format!("{}/payment-intents/{id}?token=x", s.base));
    assert_eq!(send(bad_token).await.0, 401);

    // The attempt: an unknown operator, a wrong token or a bad number are refused.
    let payments = format!("/payment-intents/{id}/payments");
    for body in [
        attempt_body(&token, "airtel", "+2250700000042"),
        attempt_body("tok_other", "orange", "+2250700000042"),
        attempt_body(&token, "orange", "0700000042"),
    ] {
        assert_eq!(s.post(&payments, body.clone()).await.0, 422, "{body}");
    }
    assert_eq!(
        s.get(&format!("/payment-intents/{id}")).await.1["payments"],
        json!([])
    );
    let (status, paying) = s
        .post(&payments, attempt_body(&token, "orange", "+2250700000042"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(paying["status"], "action_required");
    assert_eq!(paying["nextAction"]["type"], "otp");
    assert_eq!(paying["payments"][0]["status"], "pending");
    // One attempt per intent: a second is refused, whatever its operator.
    let (status, refused) = s
        .post(&payments, attempt_body(&token, "mtn", "+2250700000042"))
        .await;
    assert_eq!(status, 409);
    assert!(refused["message"].as_str().unwrap().contains("already"));
    assert_eq!(
        s.get(&format!("/payment-intents/{id}")).await.1["payments"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // The code.
    let authentication = format!("/payment-intents/{id}/authentication");
    let (status, wrong) = s
        .post(
            &authentication,
            json!({"token": token, "confirmationCode": "000000"}),
        )
        .await;
    assert_eq!(
        (status, &wrong["message"]),
        (422, &json!("invalid confirmation code"))
    );
    let (status, right) = s
        .post(
            &authentication,
            json!({"token": token, "confirmationCode": "123456"}),
        )
        .await;
    assert_eq!((status, &right["status"]), (200, &json!("processing")));
    assert!(right.get("nextAction").is_none());
    assert_eq!(
        s.post(
            &authentication,
            json!({"token": token, "confirmationCode": "123456"})
        )
        .await
        .0,
        409,
        "no code is expected any more"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while s.get(&format!("/payment-intents/{id}")).await.1["status"] != "successful" {
        assert!(tokio::time::Instant::now() < deadline, "never successful");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Each change is sent to the webhook URL as `{id, type, data: <intent>}`, signed with
/// `s1` under the newest secret and `s0` under the previous one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_carry_the_intent_and_hub2_s_signature() {
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/webhooks/hub2"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&receiver)
        .await;
    let s = Hub2::start(Hub2SandboxConfig {
        webhook_url: Some(format!("{}/webhooks/hub2", receiver.uri())),
        webhook_secrets: WebhookSecrets::parse("whsec_new,whsec_old").unwrap(),
        ..Default::default()
    })
    .await;
    let (_, intent) = s.post("/payment-intents", intent_body("h2-hook")).await;
    let (id, token) = (
        intent["id"].as_str().unwrap(),
        intent["token"].as_str().unwrap(),
    );
    // 0000: accepted then successful by itself, a step apart.
    s.post(
        &format!("/payment-intents/{id}/payments"),
        attempt_body(token, "mtn", "+2250700000000"),
    )
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let hooks = loop {
        let hooks = receiver.received_requests().await.unwrap();
        if hooks.len() >= 3 {
            break hooks;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} webhooks",
            hooks.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut types = Vec::new();
    for hook in &hooks {
        let body: Value = serde_json::from_slice(&hook.body).unwrap();
        assert!(body["id"].as_str().unwrap().starts_with("evt_"));
        assert_eq!(
            (&body["data"]["id"], &body["data"]["purchaseReference"]),
            (&json!(id), &json!("h2-hook"))
        );
        types.push(body["type"].as_str().unwrap().to_owned());
        let header = hook
            .headers
            .get("hub2-signature")
            .unwrap()
            .to_str()
            .unwrap();
        let parts: Vec<&str> = header.split(',').collect();
        assert_eq!(parts.len(), 3, "{header}");
        assert!(parts[0].strip_prefix("t=").unwrap().parse::<i64>().is_ok());
        let sign = |secret: &str| hmac_hex(&secret.to_owned().into(), &hook.body);
        assert_eq!(parts[1], format!("s1={}", sign("whsec_new")));
        assert_eq!(parts[2], format!("s0={}", sign("whsec_old")));
    }
    // Each its own delivery: they may overtake one another on the way.
    types.sort();
    assert_eq!(
        types,
        [
            "payment_intent.action_required",
            "payment_intent.processing",
            "payment_intent.succeeded"
        ]
    );
}
