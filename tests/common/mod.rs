//! Test harness: a private redis-server, the service on port 0 and Novasend-compatible
//! upstreams on real sockets.
#![allow(dead_code)]

pub mod certs;
pub mod fault_proxy;
pub mod flaky_novasend;
pub mod replica;
pub mod topology;

use payments_gateway::config::{Config, RedisConfig, StoreConfig};
use payments_gateway::domain::Countries;
use payments_gateway::payments::PaymentsSettings;
use payments_gateway::proto::payments_service_client::PaymentsServiceClient;
use payments_gateway::provider::novasend::NovasendConfig;
use payments_gateway::provider::{ProviderConfig, ProviderConfigs};
use payments_gateway::startup::Application;
use payments_gateway::telemetry::LogFormat;
use secrecy::SecretString;
use serde_json::{Value, json};
use std::net::{SocketAddr, TcpListener as StdListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

pub const API_KEY: &str = "test-api-key";
pub const API_CLIENT: &str = "test-api-client";

pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A free port that a process will bind again later (a Redis or a replica restarted on the
/// same address): below Linux's ephemeral range (32768 and up), so that no outgoing
/// connection takes it in between, and apart from the cluster harness's 16000–32000.
pub fn stable_port() -> u16 {
    use std::sync::atomic::AtomicU32;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    port_in(10_000, &NEXT, |port| {
        StdListener::bind(("127.0.0.1", port)).is_ok()
    })
}

/// The first port of `base..base + 6000` that is `usable`, walked from an offset: `next`
/// keeps this process's picks apart, the pid other processes'.
pub fn port_in(
    base: u32,
    next: &std::sync::atomic::AtomicU32,
    usable: impl Fn(u16) -> bool,
) -> u16 {
    const SPAN: u32 = 6_000;
    let offset = std::process::id().wrapping_mul(397) % SPAN;
    for _ in 0..SPAN {
        let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let port = (base + (offset + n) % SPAN) as u16;
        if usable(port) {
            return port;
        }
    }
    panic!("no usable port in {base}..{}", base + SPAN);
}

/// A redis-server of our own on a free port, stoppable and restartable.
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
}

impl RedisServer {
    pub fn start() -> Self {
        let mut server = RedisServer {
            port: stable_port(),
            child: None,
        };
        server.restart();
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (.ci/run installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if redis_ping(self.port) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server did not start on port {}", self.port);
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Runs a command against this server (for inspecting what the service stored).
    pub fn command(&self, args: &[&str]) -> redis::Value {
        let client = redis::Client::open(self.url()).unwrap();
        let mut connection = client.get_connection().unwrap();
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.query(&mut connection).unwrap()
    }

    pub fn keys(&self, pattern: &str) -> Vec<String> {
        let client = redis::Client::open(self.url()).unwrap();
        let mut connection = client.get_connection().unwrap();
        redis::cmd("KEYS")
            .arg(pattern)
            .query(&mut connection)
            .unwrap()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn redis_ping(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let mut buf = [0u8; 16];
    stream.write_all(b"PING\r\n").is_ok()
        && stream
            .read(&mut buf)
            .is_ok_and(|n| buf[..n].starts_with(b"+PONG"))
}

/// Settings tuned for tests: short waits, so failures show quickly.
pub fn test_settings() -> PaymentsSettings {
    PaymentsSettings {
        poll_interval: Duration::from_secs(5),
        idempotency_ttl: Duration::from_secs(3600),
        idempotency_wait: Duration::from_secs(10),
        upstream_timeout: Duration::from_secs(2),
        payin_ttl: Duration::from_secs(3600),
        reconcile_after: Duration::from_secs(30),
        attempt_lease: Duration::from_secs(2),
    }
}

pub fn test_config(
    novasend_url: &str,
    redis_url: Option<String>,
    settings: PaymentsSettings,
) -> Config {
    Config {
        grpc_addr: "127.0.0.1:0".parse().unwrap(),
        http_addr: "127.0.0.1:0".parse().unwrap(),
        store: match redis_url {
            Some(url) => StoreConfig::Redis(RedisConfig::single(&url)),
            None => StoreConfig::InProcess,
        },
        providers: ProviderConfigs {
            novasend: ProviderConfig {
                api: Some(NovasendConfig {
                    base_url: novasend_url.parse().unwrap(),
                    api_key: SecretString::from(API_KEY),
                    api_client: SecretString::from(API_CLIENT),
                    timeout: settings.upstream_timeout,
                }),
                webhook_secrets: Default::default(),
            },
            ..Default::default()
        },
        sandbox_addr: "127.0.0.1:0".parse().unwrap(),
        sandbox: payments_gateway::sandbox::SandboxConfig::default(),
        shutdown_grace: Duration::from_secs(1),
        countries: Countries::default(),
        routes: Default::default(),
        log_format: LogFormat::Text,
        payments: settings,
        otlp: None,
        auth_tokens: Vec::new(),
        tls: None,
        limits: payments_gateway::config::Limits::default(),
    }
}

/// The service, running on a free port until dropped.
pub struct TestApp {
    pub address: SocketAddr,
    pub http_address: SocketAddr,
    pub watchers: std::sync::Arc<payments_gateway::events::watchers::Watchers>,
    /// The in-process sandbox, when the config has no Novasend.
    pub sandbox_url: Option<String>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), String>>,
}

impl TestApp {
    pub async fn spawn(config: Config) -> Self {
        // Logs go through the test harness, shown only for failing tests; spans get trace
        // ids as in production without an exporter, so trace context flows.
        {
            use tracing_subscriber::Layer;
            use tracing_subscriber::layer::SubscriberExt;
            use tracing_subscriber::util::SubscriberInitExt;
            let filter = tracing_subscriber::EnvFilter::new(
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            );
            let logs = tracing_subscriber::fmt::layer()
                .with_test_writer()
                .with_filter(filter);
            let (traces, _) = payments_gateway::telemetry::trace_layer(None).unwrap();
            let _ = tracing_subscriber::registry()
                .with(traces)
                .with(logs)
                .try_init();
        }
        let app = Application::build(config).await.expect("the app builds");
        let address = app.grpc_addr();
        let http_address = app.http_addr();
        let watchers = app.watchers();
        let sandbox_url = app.sandbox_url();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until_stopped(async {
            let _ = stopped.await;
        }));
        TestApp {
            address,
            http_address,
            watchers,
            sandbox_url,
            stop: Some(stop),
            task,
        }
    }

    pub async fn client(&self) -> PaymentsServiceClient<Channel> {
        let endpoint = format!("http://{}", self.address);
        for _ in 0..100 {
            if let Ok(client) = PaymentsServiceClient::connect(endpoint.clone()).await {
                return client;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("cannot connect to the service at {endpoint}");
    }

    /// Posts a webhook body to this instance.
    pub async fn post_webhook(&self, body: &str, signature: Option<&str>) -> u16 {
        let mut request = reqwest::Client::new()
            .post(format!("http://{}/webhooks/novasend", self.http_address))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(signature) = signature {
            request = request.header("x-novasend-signature", signature);
        }
        request
            .send()
            .await
            .expect("the webhook endpoint answers")
            .status()
            .as_u16()
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.task).await;
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A payin as Novasend's 2026 shape returns it.
pub fn payin_2026(reference: &str, status: &str, confirmation: &str) -> Value {
    json!({
        "id": format!("pr_{reference}"),
        "type": "payin",
        "reference": reference,
        "status": status,
        "confirmationRequired": true,
        "confirmationStatus": confirmation,
        "paymentUrl": format!("https://novasend.test/link/{reference}"),
        "customer": { "name": "Awa Kone", "phoneNumber": "+2250700000042" },
        "isDirect": false,
        "payFee": false,
        "createdAt": "2026-01-19T09:11:25.832Z",
        "amount": 300,
        "fee": 6,
        "chargedAmount": 306,
        "currency": "XOF",
        "failure": null
    })
}

/// A transaction object as Novasend reports it.
pub fn transaction(status: &str) -> Value {
    json!({
        "reference": "tr_dkjd5ljficphlqmt",
        "status": status,
        "customerName": "Awa Kone",
        "processedAt": "2026-01-19T09:15:00.000Z",
        "phoneNumber": "+2250700000042",
        "amount": "300.00",
        "fees": "6.00",
        "chargedAmount": "306.00",
        "currency": "XOF"
    })
}

pub fn refund_json(reference: &str, amount: i64, refund_type: &str) -> Value {
    json!({
        "type": "refund",
        "reference": format!("rf_{reference}"),
        "originalReference": format!("pr_{reference}"),
        "amount": amount,
        "fee": 0,
        "currency": "XOF",
        "status": "processing",
        "reason": "customer asked",
        "refundType": refund_type,
        "customerMsisdn": "+2250700000042",
        "customerName": "Awa Kone",
        "createdAt": "2026-01-20T12:34:48.189Z",
        "transaction": { "reference": "tr_rf84dhf9pqiuhd38", "status": "pending", "processedAt": null }
    })
}

pub fn create_request(reference: &str, key: &str) -> payments_gateway::proto::CreatePayinRequest {
    payments_gateway::proto::CreatePayinRequest {
        reference: reference.into(),
        amount: 300,
        msisdn: "+2250700000042".into(),
        customer_name: "Awa Kone".into(),
        country: "CI".into(),
        idempotency_key: key.into(),
        ..Default::default()
    }
}

/// Field names of a status's `google.rpc.BadRequest` violations.
pub fn violated_fields(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

/// The usual set-up: a private redis-server, wiremock as Novasend and the service.
pub struct Harness {
    pub redis: RedisServer,
    pub novasend: wiremock::MockServer,
    pub app: TestApp,
    pub client: PaymentsServiceClient<Channel>,
}

impl Harness {
    pub async fn start() -> Self {
        Self::with_settings(test_settings()).await
    }

    pub async fn with_settings(settings: PaymentsSettings) -> Self {
        let redis = RedisServer::start();
        let novasend = wiremock::MockServer::start().await;
        let app = TestApp::spawn(test_config(&novasend.uri(), Some(redis.url()), settings)).await;
        let client = app.client().await;
        Harness {
            redis,
            novasend,
            app,
            client,
        }
    }

    /// Requests Novasend received, by method.
    pub async fn upstream(&self, method: &str) -> Vec<wiremock::Request> {
        self.novasend
            .received_requests()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.method.as_str() == method)
            .collect()
    }

    /// Novasend creates any payin it is asked for, answering in the 2026 shape.
    pub async fn novasend_creates(&self) {
        use wiremock::matchers::{method, path};
        wiremock::Mock::given(method("POST"))
            .and(path("/v1/payin/sessions"))
            .respond_with(|request: &wiremock::Request| {
                let body: Value = serde_json::from_slice(&request.body).unwrap();
                let reference = body["reference"].as_str().unwrap();
                wiremock::ResponseTemplate::new(201).set_body_json(payin_2026(
                    reference,
                    "processing",
                    "none",
                ))
            })
            .mount(&self.novasend)
            .await;
    }

    /// Novasend answers GET for `reference` with `body`.
    pub async fn novasend_reports(&self, reference: &str, body: Value) {
        use wiremock::matchers::{method, path};
        wiremock::Mock::given(method("GET"))
            .and(path(format!("/v1/payin/{reference}")))
            .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(body))
            .mount(&self.novasend)
            .await;
    }

    /// Creates a payin through the service (Novasend must be set up to create it).
    pub async fn create(&mut self, reference: &str) -> payments_gateway::proto::Payin {
        self.client
            .create_payin(create_request(reference, &format!("key-{reference}")))
            .await
            .expect("create succeeds")
            .into_inner()
    }
}

/// A request with metadata.
pub fn with_metadata<T>(message: T, pairs: &[(&'static str, &str)]) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    for (k, v) in pairs {
        request.metadata_mut().insert(*k, v.parse().unwrap());
    }
    request
}

/// The service over its in-process sandbox (no NOVASEND_BASE_URL), with quick steps.
pub async fn spawn_with_sandbox(
    redis: &RedisServer,
    sandbox: payments_gateway::sandbox::SandboxConfig,
) -> TestApp {
    let mut config = test_config("http://unused.invalid", Some(redis.url()), test_settings());
    config.providers.novasend.api = None;
    config.sandbox = sandbox;
    TestApp::spawn(config).await
}

pub fn quick_sandbox() -> payments_gateway::sandbox::SandboxConfig {
    payments_gateway::sandbox::SandboxConfig {
        step_delay: Duration::from_millis(100),
        expiry: Duration::from_millis(1000),
        ..Default::default()
    }
}

/// Waits for concurrent calls started with `tokio::spawn`; a panicked task fails the test.
pub async fn all_finished<T>(
    tasks: impl IntoIterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<T> {
    futures_util::future::join_all(tasks)
        .await
        .into_iter()
        .map(|joined| joined.expect("the task ran to completion"))
        .collect()
}
