//! Traces: an in-test OTLP receiver gets the server span of each RPC, continuing the caller's
//! `traceparent`, with Redis and Novasend spans as its children; Novasend gets the trace too.

mod common;

use common::*;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use payments_gateway::telemetry::{self, LogFormat, OtlpConfig};
use std::sync::{Arc, Mutex};
use tokio_stream::wrappers::TcpListenerStream;

#[derive(Clone, Default)]
struct Receiver {
    spans: Arc<Mutex<Vec<Span>>>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.spans.lock().unwrap();
        for resource in request.into_inner().resource_spans {
            for scope in resource.scope_spans {
                spans.extend(scope.spans);
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.as_ref())
        .and_then(|v| match &v.value {
            Some(AnyValue::StringValue(s)) => Some(s.clone()),
            Some(AnyValue::IntValue(i)) => Some(i.to_string()),
            Some(AnyValue::BoolValue(b)) => Some(b.to_string()),
            _ => None,
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_spans_continue_the_caller_s_trace_and_parent_redis_and_novasend_spans() {
    let receiver = Receiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(receiver.clone()))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    let guard = telemetry::init(
        LogFormat::Text,
        Some(&OtlpConfig {
            endpoint,
            service_name: "payments-gateway-test".into(),
        }),
    )
    .unwrap();

    let mut h = Harness::start().await;
    h.novasend_creates().await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let traceparent = format!("00-{trace_id}-{caller_span}-01");
    h.client
        .create_payin(with_metadata(
            create_request("order-trace", "key-trace"),
            &[("traceparent", &traceparent)],
        ))
        .await
        .unwrap();
    // Spans are flushed on shutdown.
    guard.shutdown();

    let spans = receiver.spans.lock().unwrap().clone();
    let server = spans
        .iter()
        .find(|s| s.name == "payments.v1.PaymentsService/CreatePayin")
        .unwrap_or_else(|| {
            panic!(
                "no server span among {:?}",
                spans.iter().map(|s| &s.name).collect::<Vec<_>>()
            )
        });
    assert_eq!(
        hex::encode(&server.trace_id),
        trace_id,
        "the caller's trace is continued"
    );
    assert_eq!(hex::encode(&server.parent_span_id), caller_span);
    assert_eq!(server.kind, 2, "SPAN_KIND_SERVER");
    assert_eq!(attribute(server, "rpc.system").as_deref(), Some("grpc"));
    assert_eq!(
        attribute(server, "rpc.service").as_deref(),
        Some("payments.v1.PaymentsService")
    );
    assert_eq!(
        attribute(server, "rpc.method").as_deref(),
        Some("CreatePayin")
    );
    assert_eq!(
        attribute(server, "rpc.grpc.status_code").as_deref(),
        Some("0")
    );

    let children: Vec<&Span> = spans
        .iter()
        .filter(|s| s.parent_span_id == server.span_id)
        .collect();
    let novasend = children
        .iter()
        .find(|s| s.name == "POST /v1/payin/sessions")
        .expect("a Novasend client span under the server span");
    assert_eq!(novasend.kind, 3, "SPAN_KIND_CLIENT");
    assert_eq!(
        attribute(novasend, "http.response.status_code").as_deref(),
        Some("201")
    );
    assert_eq!(
        attribute(novasend, "url.template").as_deref(),
        Some("/v1/payin/sessions")
    );
    // The record is finished by the script that saves the payin it answers with.
    for operation in ["begin", "save_payin_finishing"] {
        assert!(
            children
                .iter()
                .any(|s| attribute(s, "db.operation").as_deref() == Some(operation)),
            "a Redis `{operation}` span under the server span"
        );
    }

    // Novasend received the same trace, with our client span as parent.
    let post = &h.upstream("POST").await[0];
    let sent = post.headers.get("traceparent").unwrap().to_str().unwrap();
    assert_eq!(
        sent,
        format!("00-{trace_id}-{}-01", hex::encode(&novasend.span_id))
    );

    // No span carries a secret or a full phone number.
    let everything = format!("{spans:?}");
    for secret in [API_KEY, API_CLIENT, "+2250700000042", "Basic "] {
        assert!(!everything.contains(secret), "spans leak {secret:?}");
    }
}
