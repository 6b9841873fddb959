use crate::common::*;
use payments_gateway::payments::upstream_idempotency_key;
use payments_gateway::proto::{self as pb, GetPayinRequest};
use serde_json::{Value, json};
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_a_payin_and_tells_novasend_exactly_what_it_needs() {
    let mut h = Harness::start().await;
    h.novasend_creates().await;
    let request = pb::CreatePayinRequest {
        customer_name: "  Awa Kone ".into(),
        account_id: "merchant_9923".into(),
        success_url: "https://shop.example/ok".into(),
        failure_url: "https://shop.example/ko".into(),
        currency: "XOF".into(),
        ..create_request("order-1", "key-1")
    };
    let payin = h
        .client
        .create_payin(with_metadata(
            request,
            &[("accept-language", "fr-FR, en;q=0.5")],
        ))
        .await
        .unwrap()
        .into_inner();

    assert_eq!(payin.reference, "order-1");
    assert_eq!(payin.provider_reference, "pr_order-1");
    assert_eq!(payin.status(), pb::PayinStatus::AwaitingConfirmation);
    assert_eq!(payin.provider_status, "processing");
    assert!(payin.confirmation_required);
    assert_eq!(payin.confirmation_status(), pb::ConfirmationStatus::None);
    assert_eq!(payin.payment_url, "https://novasend.test/link/order-1");
    assert_eq!(
        (payin.amount, payin.fee, payin.charged_amount),
        (300, 6, 306)
    );
    assert_eq!(
        (payin.currency.as_str(), payin.country.as_str()),
        ("XOF", "CI")
    );
    assert_eq!(payin.account_id, "merchant_9923");
    assert_eq!(
        payin.customer.as_ref().unwrap().phone_number,
        "+2250700000042"
    );
    assert!(payin.created_at.is_some() && payin.updated_at.is_some());
    assert!(payin.transaction.is_none() && payin.failure.is_none() && payin.refund.is_none());

    let posts = h.upstream("POST").await;
    assert_eq!(posts.len(), 1);
    let post = &posts[0];
    let header = |name: &str| {
        post.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    use base64::Engine;
    let credentials =
        base64::engine::general_purpose::STANDARD.encode(format!("{API_KEY}:{API_CLIENT}"));
    assert_eq!(
        header("authorization"),
        Some(format!("Basic {credentials}"))
    );
    assert_eq!(
        header("x-idempotency-key"),
        Some(upstream_idempotency_key("create", "key-1").to_string())
    );
    assert_eq!(header("accept-language").as_deref(), Some("fr"));
    let body: Value = serde_json::from_slice(&post.body).unwrap();
    assert_eq!(
        body,
        json!({
            "reference": "order-1",
            "amount": 300,
            "msisdn": "+2250700000042",
            "customerName": "Awa Kone",
            "country": "CI",
            "accountId": "merchant_9923",
            "action": { "successUrl": "https://shop.example/ok", "failureUrl": "https://shop.example/ko" }
        })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_the_2025_response_shape() {
    let mut h = Harness::start().await;
    let body_2025 = json!({
        "type": "payin", "fee": 6, "reference": "tr_fhchi842jyimwiugjgszcxvb8n",
        "phoneNumber": "+2250700000042", "amount": 300, "chargedAmount": 306,
        "status": "processing", "currency": "XOF", "customerReference": "order-2025",
        "confirmationRequired": true, "confirmationStatus": "none",
        "paymentUrl": "https://link.novasend.app/link/abc", "createdAt": "2025-08-22T01:34:48.189Z"
    });
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(body_2025.clone()))
        .mount(&h.novasend)
        .await;
    let payin = h.create("order-2025").await;
    assert_eq!(payin.reference, "order-2025");
    assert_eq!(payin.provider_reference, "tr_fhchi842jyimwiugjgszcxvb8n");
    assert_eq!(payin.status(), pb::PayinStatus::AwaitingConfirmation);
    let customer = payin.customer.unwrap();
    assert_eq!(customer.phone_number, "+2250700000042");
    // The 2025 answer names no customer: the name is the one the caller sent (contract §9).
    let sent = create_request("order-2025", "any").customer_name;
    assert_eq!(customer.name, sent);
    // A refresh that names no one keeps it too.
    h.novasend_reports("order-2025", body_2025).await;
    let refreshed = h
        .client
        .get_payin(pb::GetPayinRequest {
            reference: "order-2025".into(),
            refresh: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(refreshed.customer.unwrap().name, sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_payin_answers_from_the_cache_while_fresh_and_asks_novasend_on_refresh() {
    let mut h = Harness::start().await;
    h.novasend_creates().await;
    h.create("order-get").await;

    let cached = h
        .client
        .get_payin(GetPayinRequest {
            reference: "order-get".into(),
            refresh: false,
        })
        .await
        .unwrap();
    assert_eq!(
        cached.get_ref().status(),
        pb::PayinStatus::AwaitingConfirmation
    );
    assert_eq!(
        h.upstream("GET").await.len(),
        0,
        "a fresh cached payin needs no upstream call"
    );

    let mut accepted = payin_2026("order-get", "processing", "accepted");
    accepted["transaction"] = Value::Null;
    h.novasend_reports("order-get", accepted).await;
    let refreshed = h
        .client
        .get_payin(GetPayinRequest {
            reference: "order-get".into(),
            refresh: true,
        })
        .await
        .unwrap();
    assert_eq!(refreshed.get_ref().status(), pb::PayinStatus::Processing);
    assert_eq!(
        refreshed.get_ref().confirmation_status(),
        pb::ConfirmationStatus::Accepted
    );
    assert_eq!(h.upstream("GET").await.len(), 1);

    let unknown = h
        .client
        .get_payin(GetPayinRequest {
            reference: "never-made".into(),
            refresh: false,
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_row_of_the_status_table_through_get_payin() {
    let mut h = Harness::start().await;
    h.novasend_creates().await;
    let with =
        |status: &str, confirmation: &str, required: bool, transaction: Value, failure: Value| {
            let mut body = payin_2026("x", status, confirmation);
            body["confirmationRequired"] = json!(required);
            body["transaction"] = transaction;
            body["failure"] = failure;
            body
        };
    let no = Value::Null;
    let rows = [
        (
            "failure-object",
            with(
                "processed",
                "accepted",
                true,
                transaction("completed"),
                json!({"code": "E1", "message": "refused"}),
            ),
            pb::PayinStatus::Failed,
        ),
        (
            "transaction-failed",
            with(
                "processed",
                "accepted",
                true,
                transaction("failed"),
                no.clone(),
            ),
            pb::PayinStatus::Failed,
        ),
        (
            "transaction-completed",
            with(
                "processed",
                "accepted",
                true,
                transaction("completed"),
                no.clone(),
            ),
            pb::PayinStatus::Succeeded,
        ),
        (
            "declined",
            with("processing", "declined", true, no.clone(), no.clone()),
            pb::PayinStatus::Declined,
        ),
        (
            "status-expired",
            with("expired", "none", true, no.clone(), no.clone()),
            pb::PayinStatus::Expired,
        ),
        (
            "confirmation-expired",
            with("processing", "expired", true, no.clone(), no.clone()),
            pb::PayinStatus::Expired,
        ),
        (
            "accepted",
            with("processing", "accepted", true, no.clone(), no.clone()),
            pb::PayinStatus::Processing,
        ),
        (
            "processed-empty-tx",
            with("processed", "none", true, json!({}), json!({})),
            pb::PayinStatus::Processing,
        ),
        (
            "processed-pending-tx",
            with(
                "processed",
                "none",
                true,
                transaction("pending"),
                no.clone(),
            ),
            pb::PayinStatus::Processing,
        ),
        (
            "awaiting",
            with("processing", "none", true, no.clone(), no.clone()),
            pb::PayinStatus::AwaitingConfirmation,
        ),
        (
            "pending",
            with("processing", "none", false, no.clone(), no.clone()),
            pb::PayinStatus::Pending,
        ),
    ];
    // Each row is the first observation of its payin (not cached yet, so Novasend is read).
    for (reference, body, expected) in rows {
        let mut body = body;
        body["reference"] = json!(reference);
        h.novasend_reports(reference, body).await;
        let payin = h
            .client
            .get_payin(GetPayinRequest {
                reference: reference.into(),
                refresh: true,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(payin.status(), expected, "{reference}");
        if expected == pb::PayinStatus::Failed && reference == "failure-object" {
            assert_eq!(payin.failure.as_ref().unwrap().code, "E1");
        }
        if reference == "transaction-completed" {
            let t = payin.transaction.unwrap();
            assert_eq!(t.status(), pb::TransactionStatus::Completed);
            assert_eq!(t.amount, "300.00");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_status_is_never_left_and_a_contradiction_is_not_applied() {
    let mut h = Harness::start().await;
    h.novasend_creates().await;
    h.create("order-final").await;
    let mut succeeded = payin_2026("order-final", "processed", "accepted");
    succeeded["transaction"] = transaction("completed");
    h.novasend_reports("order-final", succeeded).await;
    let get = GetPayinRequest {
        reference: "order-final".into(),
        refresh: true,
    };
    assert_eq!(
        h.client
            .get_payin(get.clone())
            .await
            .unwrap()
            .get_ref()
            .status(),
        pb::PayinStatus::Succeeded
    );

    h.novasend.reset().await;
    h.novasend_reports(
        "order-final",
        payin_2026("order-final", "expired", "expired"),
    )
    .await;
    let after = h.client.get_payin(get).await.unwrap().into_inner();
    assert_eq!(after.status(), pb::PayinStatus::Succeeded);
    assert_eq!(
        after.transaction.unwrap().status(),
        pb::TransactionStatus::Completed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_process_store_serves_a_single_replica() {
    let novasend = wiremock::MockServer::start().await;
    let app = TestApp::spawn(test_config(&novasend.uri(), None, test_settings())).await;
    let mut client = app.client().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(
            wiremock::ResponseTemplate::new(201).set_body_json(payin_2026(
                "mem-1",
                "processing",
                "none",
            )),
        )
        .expect(1)
        .mount(&novasend)
        .await;
    let first = client
        .create_payin(create_request("mem-1", "k"))
        .await
        .unwrap()
        .into_inner();
    let again = client
        .create_payin(create_request("mem-1", "k"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first, again);
    let other_key = client
        .create_payin(create_request("mem-1", "k2"))
        .await
        .unwrap_err();
    assert_eq!(other_key.code(), Code::AlreadyExists);
    let got = client
        .get_payin(GetPayinRequest {
            reference: "mem-1".into(),
            refresh: false,
        })
        .await
        .unwrap();
    assert_eq!(got.get_ref().provider_reference, "pr_mem-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_non_terminal_payin_older_than_the_poll_interval_is_refreshed() {
    let mut settings = test_settings();
    settings.poll_interval = std::time::Duration::from_millis(200);
    let mut h = Harness::with_settings(settings).await;
    h.novasend_creates().await;
    h.create("order-stale").await;
    h.novasend_reports(
        "order-stale",
        payin_2026("order-stale", "processing", "declined"),
    )
    .await;
    let get = GetPayinRequest {
        reference: "order-stale".into(),
        refresh: false,
    };

    let fresh = h.client.get_payin(get.clone()).await.unwrap().into_inner();
    assert_eq!(fresh.status(), pb::PayinStatus::AwaitingConfirmation);
    assert_eq!(h.upstream("GET").await.len(), 0);

    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let refreshed = h.client.get_payin(get.clone()).await.unwrap().into_inner();
    assert_eq!(refreshed.status(), pb::PayinStatus::Declined);
    assert_eq!(h.upstream("GET").await.len(), 1);

    // Terminal now: never refreshed implicitly again.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    h.client.get_payin(get).await.unwrap();
    assert_eq!(h.upstream("GET").await.len(), 1);
}
