//! Contract §5, "trace context always flows": with no OTLP exporter configured, a caller's
//! `traceparent` still reaches Novasend on every call it causes.

use crate::common::*;
use crate::refund::{novasend_refunds, refund_request, succeeded_payin};
use payments_gateway::proto::GetPayinRequest;
use std::time::{Duration, Instant};

/// Upstream requests (method, path) that carried `trace_id`.
async fn traced(h: &Harness, trace_id: &str) -> Vec<(String, String)> {
    h.novasend
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| {
            r.headers
                .get("traceparent")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.split('-').nth(1) == Some(trace_id))
        })
        .map(|r| (r.method.to_string(), r.url.path().to_owned()))
        .collect()
}

fn traceparent(trace_id: &str) -> String {
    format!("00-{trace_id}-00f067aa0ba902b7-01")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_upstream_call_carries_the_caller_s_trace_without_an_exporter() {
    let mut h = Harness::start().await;
    h.novasend_creates().await;

    let create_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    h.client
        .create_payin(with_metadata(
            create_request("order-tc", "key-tc"),
            &[("traceparent", &traceparent(create_trace))],
        ))
        .await
        .unwrap();
    assert_eq!(
        traced(&h, create_trace).await,
        [("POST".to_owned(), "/v1/payin/sessions".to_owned())]
    );

    succeeded_payin(&mut h, "order-tc2").await;
    let get_trace = "5bf92f3577b34da6a3ce929d0e0e4737";
    h.client
        .get_payin(with_metadata(
            GetPayinRequest {
                reference: "order-tc2".into(),
                refresh: true,
            },
            &[("traceparent", &traceparent(get_trace))],
        ))
        .await
        .unwrap();
    assert_eq!(
        traced(&h, get_trace).await,
        [("GET".to_owned(), "/v1/payin/order-tc2".to_owned())]
    );

    novasend_refunds(&h, "order-tc2", Duration::ZERO).await;
    let refund_trace = "6bf92f3577b34da6a3ce929d0e0e4738";
    h.client
        .refund(with_metadata(
            refund_request("order-tc2", "rk-tc"),
            &[("traceparent", &traceparent(refund_trace))],
        ))
        .await
        .unwrap();
    assert_eq!(
        traced(&h, refund_trace).await,
        [("POST".to_owned(), "/v1/payin/order-tc2/refund".to_owned())]
    );

    // A webhook's re-read carries the sender's trace.
    let webhook_trace = "7bf92f3577b34da6a3ce929d0e0e4739";
    let status = reqwest::Client::new()
        .post(format!("http://{}/webhooks/novasend", h.app.http_address))
        .header("content-type", "application/json")
        .header("traceparent", traceparent(webhook_trace))
        .body(r#"{"event": "payin.completed", "data": {"reference": "order-tc2"}}"#)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    let deadline = Instant::now() + Duration::from_secs(5);
    while traced(&h, webhook_trace).await.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        traced(&h, webhook_trace).await,
        [("GET".to_owned(), "/v1/payin/order-tc2".to_owned())]
    );
}

/// A call that carries no trace starts one: its provider call carries a `traceparent` of a
/// new trace, a different one for each call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_without_a_trace_starts_one_that_reaches_the_provider() {
    let h = Harness::start().await;
    h.novasend_creates().await;
    for (reference, key) in [("order-nt1", "key-nt1"), ("order-nt2", "key-nt2")] {
        h.client
            .clone()
            .create_payin(create_request(reference, key))
            .await
            .unwrap();
    }
    let trace_ids: Vec<String> = h
        .novasend
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.url.path() == "/v1/payin/sessions")
        .map(|r| {
            let traceparent = r.headers.get("traceparent").expect("a traceparent");
            let fields: Vec<String> = traceparent
                .to_str()
                .unwrap()
                .split('-')
                .map(str::to_owned)
                .collect();
            assert_eq!(fields.len(), 4, "{traceparent:?}");
            assert_eq!(fields[0], "00");
            fields[1].clone()
        })
        .collect();
    assert_eq!(trace_ids.len(), 2);
    assert!(
        trace_ids
            .iter()
            .all(|id| id.len() == 32 && id != &"0".repeat(32))
    );
    assert_ne!(trace_ids[0], trace_ids[1]);
}
