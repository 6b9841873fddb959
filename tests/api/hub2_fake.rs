//! A HUB2-compatible HTTP server for the HUB2 tests (wiremock over a real socket), keeping
//! the intent's state between calls, and the service set up against it with Novasend
//! beside it.

use crate::common::*;
use payments_gateway::domain::Routes;
use payments_gateway::proto::{self as pb, CreatePayinRequest};
use payments_gateway::provider::WebhookSecrets;
use payments_gateway::provider::hub2::{Hub2Config, Hub2Environment};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

/// What the fake HUB2 holds about the one intent of a test.
#[derive(Default)]
pub(crate) struct Intent {
    pub(crate) created: bool,
    /// Intents opened so far: each gets its own id (`pi_1`, `pi_2` …), and the fake
    /// answers for the latest.
    pub(crate) opened: usize,
    pub(crate) status: String,
    pub(crate) payments: Vec<Value>,
    pub(crate) next_action: Option<Value>,
    pub(crate) failure: Option<Value>,
    /// Reads answered 503 from now on (HUB2 unreachable for a moment).
    pub(crate) failing_reads: usize,
    /// A recorded attempt leaves the intent's status as it was (HUB2 updating it later).
    pub(crate) status_lags: bool,
}

impl Intent {
    pub(crate) fn json(&self) -> Value {
        let mut body = json!({
            "id": format!("pi_{}", self.opened.max(1)), "merchantId": "m_test", "token": "tok_1",
            "createdAt": "2026-11-26T10:00:00Z", "updatedAt": "2026-11-26T10:00:01Z",
            "purchaseReference": "order-h2", "customerReference": "+2250700000042",
            "status": self.status, "amount": 1500, "currency": "XOF",
            "payments": self.payments, "mode": "sandbox"
        });
        if let Some(action) = &self.next_action {
            body["nextAction"] = action.clone();
        }
        if let Some(failure) = &self.failure {
            body["lastPaymentFailure"] = failure.clone();
        }
        body
    }
}

pub(crate) struct Hub2 {
    pub(crate) server: MockServer,
    pub(crate) intent: Arc<Mutex<Intent>>,
}

impl Hub2 {
    pub(crate) async fn start() -> Self {
        let server = MockServer::start().await;
        let intent = Arc::new(Mutex::new(Intent::default()));
        let state = intent.clone();
        Mock::given(method("POST"))
            .and(path("/payment-intents"))
            .respond_with(move |_: &Request| {
                let mut intent = state.lock().unwrap();
                intent.created = true;
                intent.opened += 1;
                // A new intent starts afresh.
                intent.payments.clear();
                intent.next_action = None;
                intent.failure = None;
                intent.status = "payment_required".into();
                ResponseTemplate::new(201).set_body_json(intent.json())
            })
            .mount(&server)
            .await;
        let state = intent.clone();
        Mock::given(method("GET"))
            .and(path_regex(r"^/payment-intents/pi_\d+$"))
            .respond_with(move |_: &Request| {
                let mut intent = state.lock().unwrap();
                if intent.failing_reads > 0 {
                    intent.failing_reads -= 1;
                    return ResponseTemplate::new(503);
                }
                match intent.created {
                    true => ResponseTemplate::new(200).set_body_json(intent.json()),
                    false => ResponseTemplate::new(404),
                }
            })
            .mount(&server)
            .await;
        let state = intent.clone();
        Mock::given(method("POST"))
            .and(path_regex(r"^/payment-intents/pi_\d+/authentication$"))
            .respond_with(move |request: &Request| {
                let body: Value = serde_json::from_slice(&request.body).unwrap();
                let mut intent = state.lock().unwrap();
                if body["confirmationCode"] != "123456" {
                    return ResponseTemplate::new(422)
                        .set_body_json(json!({"message": "invalid confirmation code"}));
                }
                intent.status = "processing".into();
                intent.next_action = None;
                ResponseTemplate::new(200).set_body_json(intent.json())
            })
            .mount(&server)
            .await;
        Self { server, intent }
    }

    /// The payment attempt: HUB2 records it and asks for an OTP; `answer` is what the
    /// caller receives (a 500 …) once it is recorded, and the next `failing_reads` reads
    /// fail.
    pub(crate) async fn attempts_answered_with(
        &self,
        answer: ResponseTemplate,
        failing_reads: usize,
    ) {
        let state = self.intent.clone();
        Mock::given(method("POST"))
            .and(path_regex(r"^/payment-intents/pi_\d+/payments$"))
            .respond_with(move |_: &Request| {
                let mut intent = state.lock().unwrap();
                intent.failing_reads = failing_reads;
                intent
                    .payments
                    .push(json!({"id": "pa_1", "status": "pending"}));
                if !intent.status_lags {
                    intent.status = "action_required".into();
                    intent.next_action =
                        Some(json!({"type": "otp", "message": "Saisissez le code reçu par SMS"}));
                }
                answer.clone().set_body_json(intent.json())
            })
            .mount(&self.server)
            .await;
    }

    pub(crate) async fn requests(&self, verb: &str, route: &str) -> Vec<Request> {
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.method.as_str() == verb && r.url.path() == route)
            .collect()
    }

    pub(crate) fn set(&self, change: impl FnOnce(&mut Intent)) {
        change(&mut self.intent.lock().unwrap());
    }
}

pub(crate) struct Setup {
    pub(crate) hub2: Hub2,
    pub(crate) novasend: MockServer,
    pub(crate) app: TestApp,
    pub(crate) client:
        pb::payments_service_client::PaymentsServiceClient<tonic::transport::Channel>,
    _redis: RedisServer,
}

pub(crate) fn hub2_config(hub2: &Hub2, timeout: Duration) -> Hub2Config {
    Hub2Config {
        base_url: hub2.server.uri().parse().unwrap(),
        api_key: "hub2-key".into(),
        merchant_id: "m_test".into(),
        environment: Hub2Environment::Sandbox,
        timeout,
    }
}

pub(crate) async fn setup(timeout: Duration) -> Setup {
    let redis = RedisServer::start();
    let novasend = MockServer::start().await;
    let hub2 = Hub2::start().await;
    let mut settings = test_settings();
    settings.upstream_timeout = timeout;
    let mut config = test_config(&novasend.uri(), Some(redis.url()), settings);
    config.providers.hub2.api = Some(hub2_config(&hub2, timeout));
    config.providers.hub2.webhook_secrets = WebhookSecrets::parse("whsec_new,whsec_old").unwrap();
    config.routes = Routes::parse("CI:hub2,*:novasend").unwrap();
    let app = TestApp::spawn(config).await;
    let client = app.client().await;
    Setup {
        hub2,
        novasend,
        app,
        client,
        _redis: redis,
    }
}

pub(crate) fn hub2_request(key: &str) -> CreatePayinRequest {
    CreatePayinRequest {
        amount: 1500,
        operator: "orange".into(),
        ..create_request("order-h2", key)
    }
}
