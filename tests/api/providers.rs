//! Each payin belongs to one provider (issue 10): its reads and refunds go to that provider,
//! a payin cached before payins named theirs is Novasend's, and a payin whose provider is not
//! enabled on this replica gets an answer that says so, without calling another provider.

use crate::common::*;
use payments_gateway::proto::{self as pb, GetPayinRequest, RefundRequest};
use serde_json::Value;
use tonic::Code;

const KEY: &str = "pgw:payin:order-prov";

fn stored(h: &Harness) -> Value {
    match h.redis.command(&["HGET", KEY, "data"]) {
        redis::Value::BulkString(bytes) => serde_json::from_slice(&bytes).unwrap(),
        other => panic!("no cached payin: {other:?}"),
    }
}

fn store(h: &Harness, payin: &Value) {
    h.redis.command(&["HSET", KEY, "data", &payin.to_string()]);
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
    h.create("order-prov").await;
    let kept = stored(&h);
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
    assert_eq!(stored(&h)["provider"], "novasend", "kept on the next save");

    // A provider this replica does not have: said plainly, and nobody else is asked.
    let mut foreign = stored(&h);
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
