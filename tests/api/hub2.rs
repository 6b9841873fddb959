//! HUB2 behind the same API (contract §9), against a HUB2-compatible HTTP server over a real
//! socket (wiremock, with the intent's state kept between calls): the two-step create, the
//! payment attempt never sent twice, next actions, the status table, signed webhooks and
//! refunds refused.

use crate::common::*;
use payments_gateway::domain::Routes;
use payments_gateway::proto::{self as pb, CreatePayinRequest, GetPayinRequest, RefundRequest};
use payments_gateway::provider::WebhookSecrets;
use payments_gateway::provider::hub2::{Hub2Config, Hub2Environment};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tonic::Code;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

/// What the fake HUB2 holds about the one intent of a test.
#[derive(Default)]
struct Intent {
    created: bool,
    /// Intents opened so far: each gets its own id (`pi_1`, `pi_2` …), and the fake
    /// answers for the latest.
    opened: usize,
    status: String,
    payments: Vec<Value>,
    next_action: Option<Value>,
    failure: Option<Value>,
    /// Reads answered 503 from now on (HUB2 unreachable for a moment).
    failing_reads: usize,
    /// A recorded attempt leaves the intent's status as it was (HUB2 updating it later).
    status_lags: bool,
}

impl Intent {
    fn json(&self) -> Value {
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

struct Hub2 {
    server: MockServer,
    intent: Arc<Mutex<Intent>>,
}

impl Hub2 {
    async fn start() -> Self {
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
    async fn attempts_answered_with(&self, answer: ResponseTemplate, failing_reads: usize) {
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

    async fn requests(&self, verb: &str, route: &str) -> Vec<Request> {
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.method.as_str() == verb && r.url.path() == route)
            .collect()
    }

    fn set(&self, change: impl FnOnce(&mut Intent)) {
        change(&mut self.intent.lock().unwrap());
    }
}

struct Setup {
    hub2: Hub2,
    novasend: MockServer,
    app: TestApp,
    client: pb::payments_service_client::PaymentsServiceClient<tonic::transport::Channel>,
    _redis: RedisServer,
}

fn hub2_config(hub2: &Hub2, timeout: Duration) -> Hub2Config {
    Hub2Config {
        base_url: hub2.server.uri().parse().unwrap(),
        api_key: "hub2-key".into(),
        merchant_id: "m_test".into(),
        environment: Hub2Environment::Sandbox,
        timeout,
    }
}

async fn setup(timeout: Duration) -> Setup {
    let redis = RedisServer::start();
    let novasend = MockServer::start().await;
    let hub2 = Hub2::start().await;
    let mut settings = test_settings();
    settings.upstream_timeout = timeout;
    let mut config = test_config(&novasend.uri(), Some(redis.url()), settings);
    config.hub2 = Some(hub2_config(&hub2, timeout));
    config.hub2_webhook_secrets = WebhookSecrets::parse("whsec_new,whsec_old").unwrap();
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

fn hub2_request(key: &str) -> CreatePayinRequest {
    CreatePayinRequest {
        amount: 1500,
        operator: "orange".into(),
        ..create_request("order-h2", key)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub2_payin_is_an_intent_then_one_payment_attempt() {
    let mut s = setup(Duration::from_secs(5)).await;
    s.hub2
        .attempts_answered_with(ResponseTemplate::new(200), 0)
        .await;
    let payin = s
        .client
        .create_payin(hub2_request("key-h2"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(payin.provider(), pb::Provider::Hub2, "routed by country");
    assert_eq!(payin.provider_reference, "pi_1");
    assert_eq!(payin.status(), pb::PayinStatus::AwaitingConfirmation);
    let action = payin.next_action.clone().unwrap();
    assert_eq!(action.r#type(), pb::NextActionType::Otp);
    assert_eq!(
        payin.customer.unwrap().name,
        "Awa Kone",
        "HUB2 names no one"
    );

    let opened = &s.hub2.requests("POST", "/payment-intents").await[0];
    for (header, value) in [
        ("apikey", "hub2-key"),
        ("merchantid", "m_test"),
        ("environment", "sandbox"),
    ] {
        assert_eq!(opened.headers.get(header).unwrap(), value);
    }
    let body: Value = serde_json::from_slice(&opened.body).unwrap();
    assert_eq!(
        body,
        json!({"customerReference": "+2250700000042", "purchaseReference": "order-h2", "amount": 1500, "currency": "XOF"})
    );
    let paid = s
        .hub2
        .requests("POST", "/payment-intents/pi_1/payments")
        .await;
    assert_eq!(paid.len(), 1);
    let body: Value = serde_json::from_slice(&paid[0].body).unwrap();
    assert_eq!(
        (
            &body["token"],
            &body["paymentMethod"],
            &body["country"],
            &body["provider"],
            &body["mobileMoney"]["msisdn"]
        ),
        (
            &json!("tok_1"),
            &json!("mobile_money"),
            &json!("CI"),
            &json!("orange"),
            &json!("+2250700000042")
        )
    );
    // The same key replays; nothing more reaches HUB2, and Novasend never heard of it.
    let calls = s.hub2.server.received_requests().await.unwrap().len();
    let replay = s
        .client
        .create_payin(hub2_request("key-h2"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(replay.provider_reference, "pi_1");
    assert_eq!(
        s.hub2.server.received_requests().await.unwrap().len(),
        calls
    );
    assert!(s.novasend.received_requests().await.unwrap().is_empty());

    // A HUB2 payin is never refunded through the gateway, and nothing is asked of HUB2.
    s.hub2.set(|i| {
        i.status = "successful".into();
        i.next_action = None;
    });
    let refused = s
        .client
        .refund(RefundRequest {
            reference: "order-h2".into(),
            reason: "customer asked".into(),
            idempotency_key: "refund-h2".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("not available for HUB2"),
        "{}",
        refused.message()
    );
}

/// The attempt reached HUB2 but its answer did not come back: the create is UNAVAILABLE,
/// and the retry finds the attempt in `payments[]` instead of sending a second one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_payment_attempt_is_reconciled_never_sent_twice() {
    let mut s = setup(Duration::from_millis(500)).await;
    // HUB2 records the attempt but answers 500, and the immediate re-read (three tries)
    // fails too: the outcome stays unknown.
    s.hub2
        .attempts_answered_with(ResponseTemplate::new(500), 3)
        .await;
    let unknown = s
        .client
        .create_payin(hub2_request("key-unknown"))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::Unavailable, "{}", unknown.message());
    assert_eq!(
        s.hub2
            .requests("POST", "/payment-intents/pi_1/payments")
            .await
            .len(),
        1
    );

    let retried = s
        .client
        .create_payin(hub2_request("key-unknown"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(retried.status(), pb::PayinStatus::AwaitingConfirmation);
    assert_eq!(
        s.hub2
            .requests("POST", "/payment-intents/pi_1/payments")
            .await
            .len(),
        1,
        "one payment attempt, ever"
    );
    assert_eq!(
        s.hub2.requests("POST", "/payment-intents").await.len(),
        1,
        "one intent"
    );
}

/// As above, with HUB2 still showing `payment_required` for a while after recording the
/// attempt: the retry must go by `payments[]`, not by the status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_listed_in_payments_is_never_repeated_whatever_the_status_says() {
    let mut s = setup(Duration::from_millis(500)).await;
    s.hub2.set(|i| i.status_lags = true);
    s.hub2
        .attempts_answered_with(ResponseTemplate::new(500), 3)
        .await;
    let unknown = s
        .client
        .create_payin(hub2_request("key-lag"))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::Unavailable, "{}", unknown.message());
    let retried = s
        .client
        .create_payin(hub2_request("key-lag"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(retried.status(), pb::PayinStatus::Pending, "{retried:?}");
    let attempts = s
        .hub2
        .requests("POST", "/payment-intents/pi_1/payments")
        .await;
    assert_eq!(attempts.len(), 1, "one payment attempt, ever");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub2_needs_an_operator_and_refuses_it_before_anything_happens() {
    let mut s = setup(Duration::from_secs(5)).await;
    let refused = s
        .client
        .create_payin(CreatePayinRequest {
            operator: String::new(),
            ..hub2_request("key-op")
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&refused), ["operator"]);
    assert!(s.hub2.server.received_requests().await.unwrap().is_empty());
}

/// Every row of §9's table, read back through GetPayin with a refresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_row_of_the_hub2_status_table_through_get_payin() {
    let mut s = setup(Duration::from_secs(5)).await;
    s.hub2
        .attempts_answered_with(ResponseTemplate::new(200), 0)
        .await;
    s.client
        .create_payin(hub2_request("key-rows"))
        .await
        .unwrap();
    let otp = json!({"type": "otp", "message": "code"});
    let redirect =
        json!({"type": "redirection", "message": "", "data": {"url": "https://pay.hub2.test/r"}});
    let ussd = json!({"type": "ussd", "message": "*144#"});
    // In order, as a payin may go (never backwards); FAILED and EXPIRED are in the unit
    // test of the table, and a terminal payin is not read again below.
    use pb::NextActionType as N;
    use pb::PayinStatus as P;
    let rows: [(&str, Option<Value>, P, Option<N>); 5] = [
        (
            "action_required",
            Some(redirect),
            P::AwaitingConfirmation,
            Some(N::Redirect),
        ),
        (
            "action_required",
            Some(ussd),
            P::AwaitingConfirmation,
            Some(N::Ussd),
        ),
        (
            "action_required",
            Some(otp),
            P::AwaitingConfirmation,
            Some(N::Otp),
        ),
        ("processing", None, P::Processing, None),
        ("successful", None, P::Succeeded, None),
    ];
    for (status, action, expected, next) in rows {
        s.hub2.set(|i| {
            i.status = status.into();
            i.next_action = action.clone();
        });
        let payin = s
            .client
            .get_payin(GetPayinRequest {
                reference: "order-h2".into(),
                refresh: true,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(payin.status(), expected, "{status}");
        assert_eq!(payin.provider_status, status);
        assert_eq!(
            payin.next_action.as_ref().map(|a| a.r#type()),
            next,
            "{status}"
        );
        if next == Some(pb::NextActionType::Redirect) {
            assert_eq!(payin.payment_url, "https://pay.hub2.test/r");
        }
    }
    // A payin that succeeded stays so, whatever HUB2 says later.
    s.hub2.set(|i| {
        i.status = "canceled".into();
        i.failure = Some(json!({"code": "x", "message": "y"}));
    });
    let kept = s
        .client
        .get_payin(GetPayinRequest {
            reference: "order-h2".into(),
            refresh: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(kept.status(), pb::PayinStatus::Succeeded);
    let _ = &s.app;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_hub2_webhooks_trigger_a_re_read_and_others_are_refused() {
    let mut s = setup(Duration::from_secs(5)).await;
    s.hub2
        .attempts_answered_with(ResponseTemplate::new(200), 0)
        .await;
    s.client
        .create_payin(hub2_request("key-hook"))
        .await
        .unwrap();
    s.hub2.set(|i| {
        i.status = "processing".into();
        i.next_action = None;
    });
    let body = json!({"id": "evt_1", "type": "payment_intent.processing", "data": {"id": "pi_1"}})
        .to_string();
    let post = |signature: String| {
        let (url, body) = (
            format!("http://{}/webhooks/hub2", s.app.http_address),
            body.clone(),
        );
        async move {
            reqwest::Client::new()
                .post(url)
                .header("Hub2-Signature", signature)
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let sign = |secret: &str| {
        payments_gateway::provider::webhook_secrets::hmac_hex(
            &secret.to_owned().into(),
            body.as_bytes(),
        )
    };
    assert_eq!(post(format!("t=1,s1={}", sign("guess"))).await, 401);
    assert_eq!(
        post(format!("t=1,s1={},s0={}", sign("guess"), sign("whsec_old"))).await,
        200
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let payin = s
            .client
            .get_payin(GetPayinRequest {
                reference: "order-h2".into(),
                refresh: false,
            })
            .await
            .unwrap()
            .into_inner();
        if payin.status() == pb::PayinStatus::Processing {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the webhook's re-read never landed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn confirm(code: &str, key: &str) -> pb::ConfirmPayinRequest {
    pb::ConfirmPayinRequest {
        reference: "order-h2".into(),
        code: code.into(),
        idempotency_key: key.into(),
    }
}

/// ConfirmPayin (§9): the payer's OTP goes to HUB2, which judges it; a payin that does not
/// wait for one, an unknown payin or a malformed code are refused with nothing sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_otp_confirms_a_hub2_payin_and_a_wrong_one_is_hub2_s_to_refuse() {
    let mut s = setup(Duration::from_secs(5)).await;
    s.hub2
        .attempts_answered_with(ResponseTemplate::new(200), 0)
        .await;
    s.client
        .create_payin(hub2_request("key-otp"))
        .await
        .unwrap();
    let authentications = "/payment-intents/pi_1/authentication";

    for (request, field) in [
        (confirm("12 34", "k1"), "code"),
        (confirm("1234", ""), "idempotency_key"),
    ] {
        let refused = s.client.confirm_payin(request).await.unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument);
        assert_eq!(violated_fields(&refused), [field]);
    }
    let wrong = s
        .client
        .confirm_payin(confirm("000000", "otp-wrong"))
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::InvalidArgument, "{}", wrong.message());
    assert!(
        wrong.message().contains("HUB2") && wrong.message().contains("invalid confirmation code")
    );
    assert!(!wrong.message().contains("000000"));

    let confirmed = s
        .client
        .confirm_payin(confirm("123456", "otp-right"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(confirmed.status(), pb::PayinStatus::Processing);
    assert_eq!(confirmed.next_action, None);
    let sent = s.hub2.requests("POST", authentications).await;
    assert_eq!(sent.len(), 2);
    let body: Value = serde_json::from_slice(&sent[1].body).unwrap();
    assert_eq!(
        body,
        json!({"token": "tok_1", "confirmationCode": "123456"})
    );
    // The same key replays; another code is another request for that key.
    let replay = s
        .client
        .confirm_payin(confirm("123456", "otp-right"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(replay, confirmed);
    let conflict = s
        .client
        .confirm_payin(confirm("999999", "otp-right"))
        .await
        .unwrap_err();
    assert_eq!(conflict.code(), Code::FailedPrecondition);
    // No longer waiting for a code: refused, nothing sent.
    let late = s
        .client
        .confirm_payin(confirm("123456", "otp-late"))
        .await
        .unwrap_err();
    assert_eq!(late.code(), Code::FailedPrecondition, "{}", late.message());
    assert_eq!(s.hub2.requests("POST", authentications).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirm_payin_refuses_payins_without_an_otp_and_unknown_ones() {
    let mut s = setup(Duration::from_secs(5)).await;
    // A Novasend payin (SN is routed to Novasend): its payer acts on the payment page.
    Mock::given(method("POST"))
        .and(path("/v1/payin/sessions"))
        .respond_with(ResponseTemplate::new(201).set_body_json(payin_2026(
            "order-sn",
            "processing",
            "none",
        )))
        .mount(&s.novasend)
        .await;
    let novasend_payin = CreatePayinRequest {
        country: "SN".into(),
        ..create_request("order-sn", "key-sn")
    };
    s.client.create_payin(novasend_payin).await.unwrap();
    let refused = s
        .client
        .confirm_payin(pb::ConfirmPayinRequest {
            reference: "order-sn".into(),
            code: "123456".into(),
            idempotency_key: "confirm-sn".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        Code::FailedPrecondition,
        "{}",
        refused.message()
    );
    let unknown = s
        .client
        .confirm_payin(pb::ConfirmPayinRequest {
            reference: "order-ghost".into(),
            code: "123456".into(),
            idempotency_key: "confirm-ghost".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    assert!(s.hub2.server.received_requests().await.unwrap().is_empty());
}

// Regressions found by reviews of the HUB2 change.

/// After a refused HUB2 payment step, a new key sending the reference to Novasend gets a
/// payin that names Novasend, and later reads go to Novasend, never to HUB2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_novasend_payin_after_a_refused_hub2_step_names_its_real_provider() {
    let mut s = setup(Duration::from_secs(5)).await;
    Mock::given(method("POST"))
        .and(path("/payment-intents/pi_1/payments"))
        .respond_with(ResponseTemplate::new(422).set_body_json(json!({"message": "bad"})))
        .mount(&s.hub2.server)
        .await;
    let refused = s
        .client
        .create_payin(hub2_request("key-a"))
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        Code::InvalidArgument,
        "{}",
        refused.message()
    );
    // The merchant fixes it by sending the reference to Novasend, with a new key.
    Mock::given(method("POST"))
        .and(path("/v1/payin/sessions"))
        .respond_with(ResponseTemplate::new(201).set_body_json(payin_2026(
            "order-h2",
            "processing",
            "none",
        )))
        .mount(&s.novasend)
        .await;
    let payin = s
        .client
        .create_payin(CreatePayinRequest {
            provider: pb::Provider::Novasend as i32,
            ..create_request("order-h2", "key-b")
        })
        .await
        .unwrap()
        .into_inner();
    // What a later read does with it: it asks HUB2 for Novasend's id.
    let _ = s
        .client
        .get_payin(GetPayinRequest {
            reference: "order-h2".into(),
            refresh: true,
        })
        .await;
    let asked_hub2 = s
        .hub2
        .requests("GET", "/payment-intents/pr_order-h2")
        .await
        .len();
    assert_eq!(
        asked_hub2, 0,
        "a Novasend payin was read from HUB2 ({asked_hub2} GETs)"
    );
    assert_eq!(
        (payin.provider(), payin.provider_reference.as_str()),
        (pb::Provider::Novasend, "pr_order-h2"),
        "the payin Novasend created must name Novasend"
    );
}

/// A same-key retry of an unknown Novasend create that lands on a replica routing the
/// country to HUB2 (a rolling change of PAYMENTS_ROUTES) stays with Novasend, which may
/// hold the first payin: nothing is sent to HUB2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_never_switches_provider_after_an_unknown_outcome() {
    let redis = RedisServer::start();
    let novasend = MockServer::start().await;
    let hub2 = Hub2::start().await;
    hub2.attempts_answered_with(ResponseTemplate::new(200), 0)
        .await;
    // Novasend: the POST's outcome is unknown (500) and the reconciling read fails too.
    Mock::given(method("POST"))
        .and(path("/v1/payin/sessions"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&novasend)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/payin/order-h2"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&novasend)
        .await;
    let mut settings = test_settings();
    settings.upstream_timeout = Duration::from_secs(2);
    // Old replica: everything to Novasend.
    let old = TestApp::spawn(test_config(
        &novasend.uri(),
        Some(redis.url()),
        settings.clone(),
    ))
    .await;
    // New replica: CI to HUB2.
    let mut config = test_config(&novasend.uri(), Some(redis.url()), settings);
    config.hub2 = Some(hub2_config(&hub2, Duration::from_secs(2)));
    config.routes = Routes::parse("CI:hub2,*:novasend").unwrap();
    let new = TestApp::spawn(config).await;

    let unknown = old
        .client()
        .await
        .create_payin(hub2_request("key-r"))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::Unavailable, "{}", unknown.message());
    let novasend_posts = novasend
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.method.as_str() == "POST")
        .count();
    assert_eq!(novasend_posts, 1, "Novasend may hold a payin for order-h2");

    // The caller retries with the same key, as told; it lands on the new replica.
    let _ = new.client().await.create_payin(hub2_request("key-r")).await;
    let attempts = hub2
        .requests("POST", "/payment-intents/pi_1/payments")
        .await
        .len();
    assert_eq!(
        attempts, 0,
        "a HUB2 payment attempt was sent for a reference whose Novasend create is still unknown"
    );
}

/// The payment step times out on our side while HUB2 is still working on it: the record
/// stays held until that attempt would surely show in `payments[]`, so the caller's
/// immediate retry cannot send a second one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_attempt_still_in_flight_is_not_doubled_by_a_retry() {
    let mut s = setup(Duration::from_millis(500)).await;
    let state = s.hub2.intent.clone();
    Mock::given(method("POST"))
        .and(path("/payment-intents/pi_1/payments"))
        .respond_with(move |_: &Request| {
            // HUB2 is slow: it records the attempt 800 ms later, answers after 1.5 s.
            let later = state.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(800));
                let mut intent = later.lock().unwrap();
                intent
                    .payments
                    .push(json!({"id": "pa_x", "status": "pending"}));
                intent.status = "processing".into();
            });
            let body = state.lock().unwrap().json();
            ResponseTemplate::new(200)
                .set_body_json(body)
                .set_delay(Duration::from_millis(1500))
        })
        .mount(&s.hub2.server)
        .await;
    let first = s
        .client
        .create_payin(hub2_request("key-slow"))
        .await
        .unwrap_err();
    assert_eq!(first.code(), Code::Unavailable, "{}", first.message());
    // "outcome unknown, retry with the same key": the caller does so at once.
    let _ = s.client.create_payin(hub2_request("key-slow")).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let attempts = s
        .hub2
        .requests("POST", "/payment-intents/pi_1/payments")
        .await
        .len();
    assert_eq!(attempts, 1, "two payment attempts for one intent");
}

/// A refused payment step frees the reference and forgets its intent: a new key's create
/// opens a fresh intent and pays on it, never answered with the abandoned one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_key_after_a_refused_step_is_not_answered_with_the_old_intent() {
    let mut s = setup(Duration::from_secs(5)).await;
    let refuse = Mock::given(method("POST"))
        .and(path("/payment-intents/pi_1/payments"))
        .respond_with(ResponseTemplate::new(422).set_body_json(json!({"message": "bad"})))
        .up_to_n_times(1)
        .mount_as_scoped(&s.hub2.server)
        .await;
    let refused = s
        .client
        .create_payin(hub2_request("key-1"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    drop(refuse);
    // The refused intent charges no one: it is forgotten, not kept to answer later creates.
    let gone = s
        .client
        .get_payin(GetPayinRequest {
            reference: "order-h2".into(),
            refresh: false,
        })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
    // The merchant fixed the cause and retries the reference with a new key.
    s.hub2
        .attempts_answered_with(ResponseTemplate::new(200), 0)
        .await;
    let created = s.client.create_payin(hub2_request("key-2")).await;
    let attempts = s
        .hub2
        .requests("POST", "/payment-intents/pi_1/payments")
        .await
        .len()
        + s.hub2
            .requests("POST", "/payment-intents/pi_2/payments")
            .await
            .len();
    assert_eq!(
        (
            created.as_ref().map(|p| p.get_ref().status()).ok(),
            attempts
        ),
        (Some(pb::PayinStatus::AwaitingConfirmation), 2),
        "{created:?}"
    );
}

/// Routes that change under a key's life: the same request with the same key is replayed
/// (not refused by the new route's checks), and once its record has expired while its
/// reference stays claimed, a retry still goes to the provider holding the payin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_keeps_its_provider_when_the_routes_change() {
    let redis = RedisServer::start();
    let novasend = MockServer::start().await;
    let hub2 = Hub2::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/payin/sessions"))
        .respond_with(ResponseTemplate::new(201).set_body_json(payin_2026(
            "order-h2",
            "processing",
            "none",
        )))
        .mount(&novasend)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/payin/order-h2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(payin_2026(
            "order-h2",
            "processing",
            "none",
        )))
        .mount(&novasend)
        .await;
    let old = TestApp::spawn(test_config(
        &novasend.uri(),
        Some(redis.url()),
        test_settings(),
    ))
    .await;
    let mut config = test_config(&novasend.uri(), Some(redis.url()), test_settings());
    config.hub2 = Some(hub2_config(&hub2, Duration::from_secs(2)));
    config.routes = Routes::parse("CI:hub2,*:novasend").unwrap();
    let new = TestApp::spawn(config).await;

    // Made when CI went to Novasend (no operator: Novasend needs none).
    let first = create_request("order-h2", "key-k");
    let created = old
        .client()
        .await
        .create_payin(first.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.provider(), pb::Provider::Novasend);
    // Now CI goes to HUB2, which needs an operator: the same request is still replayed.
    let replayed = new
        .client()
        .await
        .create_payin(first)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(replayed, created);

    // The record expires (24 h) while the reference stays claimed with its payin (30 days).
    redis.command(&["DEL", "pgw:idem:create:key-k"]);
    let later = CreatePayinRequest {
        operator: "orange".into(),
        ..create_request("order-h2", "key-k")
    };
    let again = new
        .client()
        .await
        .create_payin(later)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.provider(), pb::Provider::Novasend);
    assert_eq!(again.provider_reference, created.provider_reference);
    assert!(
        hub2.server.received_requests().await.unwrap().is_empty(),
        "nothing was asked of HUB2"
    );
}
