//! What an operator relies on: health, reflection, metrics, caller auth, TLS and limits.
use crate::common::certs::{certificate_authority, leaf};
use crate::common::*;
use payments_gateway::proto::payments_service_client::PaymentsServiceClient;
use payments_gateway::proto::{self as pb, StreamPayinUpdatesRequest};
use secrecy::SecretString;
use std::time::{Duration, Instant};
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic_health::ServingStatus;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

async fn health(channel: Channel, service: &str) -> ServingStatus {
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .unwrap();
    match response.into_inner().status {
        1 => ServingStatus::Serving,
        2 => ServingStatus::NotServing,
        _ => ServingStatus::Unknown,
    }
}

async fn channel(app: &TestApp) -> Channel {
    Channel::from_shared(format!("http://{}", app.address))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

async fn wait_for_health(channel: &Channel, expected: ServingStatus) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = (
            health(channel.clone(), "").await,
            health(channel.clone(), "payments.v1.PaymentsService").await,
        );
        if now == (expected, expected) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "health stayed {now:?}, expected {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_health_follows_redis_going_away_and_coming_back() {
    let mut h = Harness::start().await;
    let channel = channel(&h.app).await;
    wait_for_health(&channel, ServingStatus::Serving).await;
    h.redis.stop();
    wait_for_health(&channel, ServingStatus::NotServing).await;
    assert_eq!(
        health(channel.clone(), "liveness").await,
        ServingStatus::Serving,
        "liveness ignores the store"
    );
    let http = reqwest::Client::new();
    let ready = http
        .get(format!("http://{}/readyz", h.app.http_address))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    h.redis.restart();
    wait_for_health(&channel, ServingStatus::Serving).await;
    let ready = http
        .get(format!("http://{}/readyz", h.app.http_address))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["store"], "ok");
    assert!(
        body["novasend"].is_string(),
        "Novasend's reachability is reported: {body}"
    );
    let live = http
        .get(format!("http://{}/healthz", h.app.http_address))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_v1_and_v1alpha_list_the_services() {
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
    };
    let h = Harness::start().await;
    let channel = channel(&h.app).await;
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = ServerReflectionClient::new(channel.clone())
        .server_reflection_info(tokio_stream::once(request))
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) =
        responses.message().await.unwrap().unwrap().message_response
    else {
        panic!("not a list of services");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in ["payments.v1.PaymentsService", "grpc.health.v1.Health"] {
        assert!(names.iter().any(|n| n == expected), "{names:?}");
    }

    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest as AlphaRequest;
    use tonic_reflection::pb::v1alpha::{
        ServerReflectionRequest as Alpha,
        server_reflection_client::ServerReflectionClient as AlphaClient,
    };
    let alpha = Alpha {
        host: String::new(),
        message_request: Some(AlphaRequest::ListServices(String::new())),
    };
    let mut responses = AlphaClient::new(channel)
        .server_reflection_info(tokio_stream::once(alpha))
        .await
        .unwrap()
        .into_inner();
    assert!(
        responses
            .message()
            .await
            .unwrap()
            .unwrap()
            .message_response
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_rpcs_novasend_calls_idempotency_and_webhooks() {
    let mut h = Harness::start().await;
    h.novasend_creates().await;
    h.create("order-m").await;
    h.create("order-m").await;
    h.client
        .create_payin(create_request("order-m", "key-order-m-2"))
        .await
        .unwrap_err();
    h.app.post_webhook("not json", None).await;
    let text = reqwest::get(format!("http://{}/metrics", h.app.http_address))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        r#"payments_rpc_requests_total{method="CreatePayin",code="Ok"}"#,
        r#"payments_rpc_requests_total{method="CreatePayin",code="AlreadyExists"}"#,
        "payments_rpc_duration_seconds_bucket{method=\"CreatePayin\"",
        r#"payments_provider_requests_total{provider="novasend",operation="create_session",outcome="201"}"#,
        "payments_provider_duration_seconds_bucket{provider=\"novasend\",operation=\"create_session\"",
        r#"payments_idempotency_total{operation="create",result="replayed"}"#,
        r#"payments_webhooks_total{provider="novasend",result="not_json"}"#,
        r#"payments_provider_reachable{provider="novasend"} 1"#,
    ] {
        assert!(text.contains(needle), "missing {needle} in:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_tokens_guard_the_api_but_not_health_or_reflection() {
    let redis = RedisServer::start();
    let novasend = wiremock::MockServer::start().await;
    let mut config = test_config(&novasend.uri(), Some(redis.url()), test_settings());
    config.auth_tokens = vec![
        SecretString::from("token-one"),
        SecretString::from("token-two"),
    ];
    let app = TestApp::spawn(config).await;
    let mut client = app.client().await;
    let get = || pb::GetPayinRequest {
        reference: "order-auth".into(),
        refresh: false,
    };

    let missing = client.get_payin(get()).await.unwrap_err();
    assert_eq!(missing.code(), Code::Unauthenticated);
    let wrong = client
        .get_payin(with_metadata(
            get(),
            &[("authorization", "Bearer token-three")],
        ))
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::Unauthenticated);
    assert!(!wrong.message().contains("token-"));
    // A right token passes authentication (the payin itself is unknown).
    let passed = client
        .get_payin(with_metadata(
            get(),
            &[("authorization", "Bearer token-two")],
        ))
        .await
        .unwrap_err();
    assert_eq!(passed.code(), Code::NotFound);
    assert_eq!(
        health(channel(&app).await, "").await,
        ServingStatus::Serving,
        "health needs no token"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_mutual_tls() {
    let (ca, ca_pem) = certificate_authority();
    let (server_cert, server_key) = leaf(&ca, "localhost");
    let (client_cert, client_key) = leaf(&ca, "caller");
    let redis = RedisServer::start();
    let novasend = wiremock::MockServer::start().await;
    let mut config = test_config(&novasend.uri(), Some(redis.url()), test_settings());
    config.tls = Some(payments_gateway::config::TlsConfig {
        cert: server_cert.into_bytes(),
        key: SecretString::from(server_key),
        client_ca: Some(ca_pem.clone().into_bytes()),
    });
    let app = TestApp::spawn(config).await;
    let endpoint = format!("https://localhost:{}", app.address.port());
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&ca_pem))
        .domain_name("localhost");

    // Without a client certificate the handshake (or the first call) fails.
    let anonymous = Channel::from_shared(endpoint.clone())
        .unwrap()
        .tls_config(tls.clone())
        .unwrap()
        .connect()
        .await;
    if let Ok(channel) = anonymous {
        let refused = PaymentsServiceClient::new(channel)
            .get_payin(pb::GetPayinRequest {
                reference: "x".into(),
                refresh: false,
            })
            .await
            .unwrap_err();
        // Refused at the transport (the code depends on when the TLS alert arrives), never
        // reaching the service, which would have said NOT_FOUND.
        assert_ne!(refused.code(), Code::NotFound, "{refused:?}");
    }
    // Plain text is refused too.
    let plain = PaymentsServiceClient::connect(format!("http://{}", app.address)).await;
    if let Ok(mut client) = plain {
        let refused = client
            .get_payin(pb::GetPayinRequest {
                reference: "x".into(),
                refresh: false,
            })
            .await
            .unwrap_err();
        assert_ne!(refused.code(), Code::NotFound, "{refused:?}");
    }

    let mutual = tls.identity(Identity::from_pem(client_cert, client_key));
    let channel = Channel::from_shared(endpoint)
        .unwrap()
        .tls_config(mutual)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let not_found = PaymentsServiceClient::new(channel)
        .get_payin(pb::GetPayinRequest {
            reference: "unknown".into(),
            refresh: false,
        })
        .await
        .unwrap_err();
    assert_eq!(
        not_found.code(),
        Code::NotFound,
        "the call went through over mTLS"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_refuse_rather_than_queue() {
    let redis = RedisServer::start();
    let novasend = wiremock::MockServer::start().await;
    let mut config = test_config(&novasend.uri(), Some(redis.url()), test_settings());
    config.limits.max_streams = 2;
    config.limits.max_message_bytes = 1024;
    let app = TestApp::spawn(config).await;
    let mut client = app.client().await;
    wiremock::Mock::given(wiremock::matchers::method("GET"))
        .respond_with(
            wiremock::ResponseTemplate::new(200).set_body_json(payin_2026(
                "order-lim",
                "processing",
                "none",
            )),
        )
        .mount(&novasend)
        .await;

    let mut open = Vec::new();
    for _ in 0..2 {
        let mut stream = client
            .stream_payin_updates(StreamPayinUpdatesRequest {
                reference: "order-lim".into(),
            })
            .await
            .unwrap()
            .into_inner();
        stream.message().await.unwrap().unwrap();
        open.push(stream);
    }
    let third = client
        .stream_payin_updates(StreamPayinUpdatesRequest {
            reference: "order-lim".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(third.code(), Code::ResourceExhausted);
    drop(open);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        client
            .stream_payin_updates(StreamPayinUpdatesRequest {
                reference: "order-lim".into()
            })
            .await
            .is_ok(),
        "a slot frees when a stream ends"
    );

    let huge = pb::CreatePayinRequest {
        customer_name: "x".repeat(4096),
        ..create_request("order-big", "key-big")
    };
    let refused = client.create_payin(huge).await.unwrap_err();
    assert_eq!(refused.code(), Code::OutOfRange, "{refused:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_beyond_the_replica_in_flight_bound_are_shed_before_any_work() {
    let redis = RedisServer::start();
    let novasend = wiremock::MockServer::start().await;
    let mut config = test_config(&novasend.uri(), Some(redis.url()), test_settings());
    config.limits.max_in_flight = 1;
    let app = TestApp::spawn(config).await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(
            wiremock::ResponseTemplate::new(201)
                .set_body_json(payin_2026("order-shed-1", "processing", "none"))
                .set_delay(Duration::from_millis(500)),
        )
        .mount(&novasend)
        .await;
    // Two connections: the bound is the replica's, not a connection's.
    let (first, second) = (app.client().await, app.client().await);
    let calls = [first, second].into_iter().zip(1..).map(|(mut client, i)| {
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100 * (i - 1))).await;
            client
                .create_payin(with_metadata(
                    create_request(&format!("order-shed-{i}"), &format!("key-shed-{i}")),
                    &[("accept-language", "fr")],
                ))
                .await
        })
    });
    let results = all_finished(calls).await;
    assert!(results[0].is_ok(), "{:?}", results[0]);
    let shed = results[1].as_ref().unwrap_err();
    assert_eq!(shed.code(), Code::ResourceExhausted, "{shed:?}");
    assert!(shed.message().contains("trop d'appels"), "{shed:?}");
    let posts = novasend.received_requests().await.unwrap().len();
    assert_eq!(posts, 1, "the shed call never reached Novasend");
    assert!(
        redis.keys("pgw:idem:*key-shed-2").is_empty(),
        "the shed call left a record"
    );
}

/// A gRPC client multiplexes every call over one connection: beyond the advertised stream
/// limit its transport queues them, and none is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_calls_on_one_connection_queue_instead_of_being_shed() {
    let redis = RedisServer::start();
    let novasend = wiremock::MockServer::start().await;
    let mut config = test_config(&novasend.uri(), Some(redis.url()), test_settings());
    config.limits.max_concurrent_per_connection = 8;
    let app = TestApp::spawn(config).await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(|request: &wiremock::Request| {
            let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
            let reference = body["reference"].as_str().unwrap();
            wiremock::ResponseTemplate::new(201)
                .set_body_json(payin_2026(reference, "processing", "none"))
                .set_delay(Duration::from_millis(50))
        })
        .mount(&novasend)
        .await;
    let mut client = app.client().await;
    // The first call lets the client read the server's SETTINGS (as any caller would have).
    client
        .create_payin(create_request("order-q-warm", "key-q-warm"))
        .await
        .unwrap();
    let calls = (0..100).map(|i| {
        let mut client = client.clone();
        tokio::spawn(async move {
            client
                .create_payin(create_request(
                    &format!("order-q-{i}"),
                    &format!("key-q-{i}"),
                ))
                .await
        })
    });
    let refused: Vec<_> = all_finished(calls)
        .await
        .into_iter()
        .filter_map(Result::err)
        .collect();
    assert!(
        refused.is_empty(),
        "{} refused: {:?}",
        refused.len(),
        refused.first()
    );
}
