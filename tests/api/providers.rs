//! Each payin belongs to one provider (issue 10): its reads and refunds go to that provider,
//! a payin cached before payins named theirs is Novasend's, and a payin whose provider is not
//! enabled on this replica gets an answer that says so, without calling another provider.

use crate::common::*;
use payments_gateway::proto::{self as pb, GetPayinRequest, RefundRequest};
use serde_json::Value;
use tonic::Code;

fn stored(h: &Harness, reference: &str) -> Value {
    match h
        .redis
        .command(&["HGET", &format!("pgw:payin:{reference}"), "data"])
    {
        redis::Value::BulkString(bytes) => serde_json::from_slice(&bytes).unwrap(),
        other => panic!("no cached payin: {other:?}"),
    }
}

fn store(h: &Harness, payin: &Value) {
    h.redis
        .command(&["HSET", "pgw:payin:order-prov", "data", &payin.to_string()]);
}

async fn refreshed(h: &mut Harness, language: &str) -> Result<pb::Payin, tonic::Status> {
    let request = GetPayinRequest {
        reference: "order-prov".into(),
        refresh: true,
    };
    h.client
        .get_payin(with_metadata(request, &[("accept-language", language)]))
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payin_is_read_and_refunded_only_through_its_own_provider() {
    let mut h = Harness::start().await;
    h.novasend_creates().await;
    let created = h.create("order-prov").await;
    assert_eq!(created.provider(), pb::Provider::Novasend);
    assert_eq!(
        created.next_action, None,
        "Novasend's payer acts on payment_url"
    );
    let kept = stored(&h, "order-prov");
    assert_eq!(kept["provider"], "novasend");

    // Cached before payins named their provider: Novasend's.
    let mut older = kept.clone();
    older.as_object_mut().unwrap().remove("provider");
    store(&h, &older);
    h.novasend_reports(
        "order-prov",
        payin_2026("order-prov", "processing", "accepted"),
    )
    .await;
    let fresh = refreshed(&mut h, "en").await.unwrap();
    assert_eq!(fresh.status(), pb::PayinStatus::Processing);
    assert_eq!(
        stored(&h, "order-prov")["provider"],
        "novasend",
        "kept on the next save"
    );

    // A provider this replica does not have: said plainly, and nobody else is asked.
    let mut foreign = stored(&h, "order-prov");
    foreign["provider"] = "hub2".into();
    store(&h, &foreign);
    let calls = h.novasend.received_requests().await.unwrap().len();
    let refused = refreshed(&mut h, "en").await.unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable);
    assert!(
        refused.message().contains("`hub2` is not enabled"),
        "{}",
        refused.message()
    );
    let en_francais = refreshed(&mut h, "fr").await.unwrap_err();
    assert!(
        en_francais.message().contains("n'est pas activé"),
        "{}",
        en_francais.message()
    );
    let refund = h
        .client
        .refund(RefundRequest {
            reference: "order-prov".into(),
            reason: "customer asked".into(),
            idempotency_key: "refund-prov".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refund.code(), Code::Unavailable, "{}", refund.message());
    assert_eq!(
        h.novasend.received_requests().await.unwrap().len(),
        calls,
        "no call to Novasend for another provider's payin"
    );
}

/// Webhooks arrive at `/webhooks/{provider}`; a provider not enabled here has no endpoint,
/// and a provider's own reference is looked up among that provider's references only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_served_per_provider_and_find_payins_by_that_provider_s_reference() {
    let mut h = Harness::start().await;
    h.novasend_creates().await;
    h.create("order-hook").await;
    let index = h
        .redis
        .command(&["GET", "pgw:payin-by-provider:novasend:pr_order-hook"]);
    assert_eq!(
        index,
        redis::Value::BulkString(b"order-hook".to_vec()),
        "the provider's reference is indexed under the provider's name"
    );

    let post = |path: &'static str, body: String| {
        let url = format!("http://{}{path}", h.app.http_address);
        async move {
            reqwest::Client::new()
                .post(url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    // Only Novasend's id: found through Novasend's index, and re-read from Novasend.
    h.novasend_reports(
        "order-hook",
        payin_2026("order-hook", "processing", "accepted"),
    )
    .await;
    let only_the_id =
        serde_json::json!({"event": "payin.confirmed", "data": {"id": "pr_order-hook"}});
    assert_eq!(
        post("/webhooks/novasend", only_the_id.to_string()).await,
        200
    );
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while stored(&h, "order-hook")["status"] != "processing" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the webhook's re-read never landed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // No endpoint for a provider that is not enabled: nothing read, nothing called.
    let calls = h.novasend.received_requests().await.unwrap().len();
    assert_eq!(post("/webhooks/hub2", only_the_id.to_string()).await, 404);
    assert_eq!(post("/webhooks/nobody", "{}".into()).await, 404);
    assert_eq!(h.novasend.received_requests().await.unwrap().len(), calls);
}

/// `provider` and `operator` are request fields (§9): a provider that is not enabled, an
/// unknown one or an unknown operator is a field violation that leaves no trace; the fields
/// are part of the request, so the same key with them changed is a conflict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_and_operator_are_checked_and_belong_to_the_request() {
    let mut h = Harness::start().await;
    h.novasend_creates().await;
    let base = create_request("order-route", "key-route");
    for (request, field) in [
        (
            pb::CreatePayinRequest {
                provider: pb::Provider::Hub2 as i32,
                ..base.clone()
            },
            "provider",
        ),
        (
            pb::CreatePayinRequest {
                provider: 9,
                ..base.clone()
            },
            "provider",
        ),
        (
            pb::CreatePayinRequest {
                operator: "airtel".into(),
                ..base.clone()
            },
            "operator",
        ),
    ] {
        let refused = h.client.create_payin(request).await.unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument);
        assert_eq!(violated_fields(&refused), [field], "{}", refused.message());
    }
    assert!(h.novasend.received_requests().await.unwrap().is_empty());
    assert_eq!(
        h.redis.command(&["DBSIZE"]),
        redis::Value::Int(0),
        "refused requests leave no record"
    );

    // Named explicitly, Novasend takes it; the operator is not sent to Novasend.
    let explicit = pb::CreatePayinRequest {
        provider: pb::Provider::Novasend as i32,
        operator: "Orange".into(),
        ..base.clone()
    };
    let created = h.client.create_payin(explicit).await.unwrap().into_inner();
    assert_eq!(created.provider(), pb::Provider::Novasend);
    let posted = &h.upstream("POST").await[0];
    let body: Value = serde_json::from_slice(&posted.body).unwrap();
    assert!(
        body.get("operator").is_none() && body.get("provider").is_none(),
        "{body}"
    );
    // The same key without them is another request.
    let conflict = h.client.create_payin(base).await.unwrap_err();
    assert_eq!(conflict.code(), Code::FailedPrecondition);
}
