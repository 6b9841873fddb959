//! HUB2 behind the same API (contract §9), against a HUB2-compatible HTTP server over a real
//! socket (wiremock, with the intent's state kept between calls): the two-step create, the
//! payment attempt never sent twice, next actions, the status table, signed webhooks and
//! refunds refused.

use crate::common::*;
use crate::hub2_fake::*;
use payments_gateway::proto::{self as pb, CreatePayinRequest, GetPayinRequest, RefundRequest};
use serde_json::{Value, json};
use std::time::Duration;
use tonic::Code;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};
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
