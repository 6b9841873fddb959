//! Prometheus metrics: names in one place, rendered at `GET /metrics`.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

pub const RPC_REQUESTS: &str = "payments_rpc_requests_total";
pub const RPC_DURATION: &str = "payments_rpc_duration_seconds";
pub const PROVIDER_REQUESTS: &str = "payments_provider_requests_total";
pub const PROVIDER_DURATION: &str = "payments_provider_duration_seconds";
pub const PROVIDER_REACHABLE: &str = "payments_provider_reachable";
pub const IDEMPOTENCY: &str = "payments_idempotency_total";
pub const OPEN_STREAMS: &str = "payments_open_streams";
pub const WEBHOOKS: &str = "payments_webhooks_total";
pub const POLLS: &str = "payments_polls_total";
pub const REDIS_ERRORS: &str = "payments_redis_errors_total";
pub const CONTRADICTIONS: &str = "payments_status_contradictions_total";
pub const SHED: &str = "payments_requests_shed_total";

const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The process-wide recorder (installed once; every app in a test process shares it).
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let handle = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
            .expect("the buckets are not empty")
            .install_recorder()
            .expect("no other metrics recorder is installed");
        describe();
        handle
    })
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(RPC_REQUESTS, "gRPC calls by method and status code");
    describe_histogram!(RPC_DURATION, "gRPC call latency by method");
    describe_counter!(
        PROVIDER_REQUESTS,
        "Provider calls by provider, operation and outcome"
    );
    describe_histogram!(
        PROVIDER_DURATION,
        "Provider call latency by provider and operation"
    );
    describe_gauge!(
        PROVIDER_REACHABLE,
        "By provider: 1 when its last call got an HTTP answer, 0 when it could not"
    );
    describe_counter!(
        IDEMPOTENCY,
        "idempotency outcomes: replayed, conflict, waited, aborted"
    );
    describe_gauge!(
        OPEN_STREAMS,
        "open StreamPayinUpdates streams on this replica"
    );
    describe_counter!(WEBHOOKS, "Webhooks by provider and result");
    describe_counter!(
        POLLS,
        "Provider status reads by polling, by source and result"
    );
    describe_counter!(REDIS_ERRORS, "failed Redis operations by operation");
    describe_counter!(
        CONTRADICTIONS,
        "provider observations not applied because they contradict a known status"
    );
    describe_counter!(SHED, "requests refused to protect the service, by reason");
}
