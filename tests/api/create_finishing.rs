//! The save that keeps a create's payin finishes its idempotency record in the same script
//! (decisions.md): what is recorded is byte for byte what the caller got, and a record this
//! attempt no longer owns is neither finished nor answered from. (From the session-4 review.)

use crate::common::*;
use payments_gateway::proto::GetPayinRequest;
use prost::Message;
use std::time::Duration;
use tonic::Code;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

fn record_field(h: &Harness, key: &str, field: &str) -> Option<Vec<u8>> {
    match h
        .redis
        .command(&["HGET", &format!("pgw:idem:create:{key}"), field])
    {
        redis::Value::BulkString(b) => Some(b),
        redis::Value::Nil => None,
        other => panic!("unexpected reply {other:?}"),
    }
}

async fn slow_post(h: &Harness, reference: &str) {
    Mock::given(method("POST"))
        .and(path("/v1/payin/sessions"))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(payin_2026(reference, "processing", "none"))
                .set_delay(Duration::from_millis(600)),
        )
        .mount(&h.novasend)
        .await;
}

/// A refresh caches the payin while the POST is under way: the create's first save loses
/// its compare-and-set, the next one saves and finishes, and answer, record and replay agree.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payin_cached_during_the_post_is_answered_and_recorded_alike() {
    let h = Harness::start().await;
    slow_post(&h, "order-rc").await;
    h.novasend_reports("order-rc", payin_2026("order-rc", "processing", "accepted"))
        .await;
    let mut client = h.client.clone();
    let create = tokio::spawn(async move {
        client
            .create_payin(create_request("order-rc", "key-rc"))
            .await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    h.client
        .clone()
        .get_payin(GetPayinRequest {
            reference: "order-rc".into(),
            refresh: true,
        })
        .await
        .expect("the provider knows it");
    let first = create.await.unwrap().expect("create succeeds").into_inner();
    assert_eq!(
        record_field(&h, "key-rc", "state").as_deref(),
        Some(&b"done"[..])
    );
    assert_eq!(
        record_field(&h, "key-rc", "body"),
        Some(first.encode_to_vec())
    );
    assert_eq!(record_field(&h, "key-rc", "owner"), None);
    let replay = h
        .client
        .clone()
        .create_payin(create_request("order-rc", "key-rc"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(replay.encode_to_vec(), first.encode_to_vec());
    assert_eq!(h.upstream("POST").await.len(), 1);
}

/// Another attempt owns the record by the time the POST answers: the payin is kept, the
/// record is left to its owner, and the caller is told to retry rather than answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_taken_over_during_the_post_is_not_finished_nor_answered() {
    let h = Harness::start().await;
    slow_post(&h, "order-to").await;
    let mut client = h.client.clone();
    let create = tokio::spawn(async move {
        client
            .create_payin(create_request("order-to", "key-to"))
            .await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    h.redis
        .command(&["HSET", "pgw:idem:create:key-to", "owner", "someone-else"]);
    let status = create.await.unwrap().expect_err("not the record's answer");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(
        record_field(&h, "key-to", "state").as_deref(),
        Some(&b"running"[..])
    );
    assert_eq!(
        record_field(&h, "key-to", "owner").as_deref(),
        Some(&b"someone-else"[..])
    );
    assert!(matches!(
        h.redis.command(&["HGET", "pgw:payin:order-to", "v"]),
        redis::Value::BulkString(_)
    ));
}
