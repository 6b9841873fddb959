//! Wiring: builds the store, the provider, the gRPC and HTTP servers from a `Config`, binds
//! the listeners (port 0 in tests) and runs until told to stop.

use crate::api::PaymentsApi;
use crate::api::auth::BearerAuth;
use crate::api::stream::Streams;
use crate::config::{Config, Limits, StoreConfig, TlsConfig};
use crate::events::reconciler;
use crate::events::watchers::Watchers;
use crate::events::webhook::WebhookState;
use crate::payments::Payments;
use crate::proto::payments_service_server::{PaymentsService, PaymentsServiceServer};
use crate::provider::Providers;
use crate::sandbox::{self, SandboxHandle};
use crate::store::Store;
use crate::store::memory::MemoryStore;
use crate::store::redis::RedisStore;
use secrecy::ExposeSecret;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};

const SERVICE_NAME: &str = "payments.v1.PaymentsService";
/// The health service name Kubernetes' liveness and startup probes ask for.
pub const LIVENESS_SERVICE: &str = "liveness";

/// After the drain period, how long streams get to deliver their UNAVAILABLE.
const STREAM_CLOSE_WAIT: Duration = Duration::from_secs(2);

pub struct Application {
    grpc_listener: TcpListener,
    http_listener: TcpListener,
    api: PaymentsApi,
    http: axum::Router,
    payments: Payments,
    watchers: Arc<Watchers>,
    closing: watch::Sender<bool>,
    shutdown_grace: Duration,
    /// Lives as long as the service: dropping it stops the sandbox.
    sandbox: Option<SandboxHandle>,
    store: Arc<dyn Store>,
    auth: BearerAuth,
    tls: Option<TlsConfig>,
    limits: Limits,
}

/// Installs the one rustls crypto provider of the whole binary (ring). Idempotent.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl Application {
    pub async fn build(config: Config) -> Result<Self, String> {
        install_crypto_provider();
        let store: Arc<dyn Store> = match &config.store {
            StoreConfig::Redis(redis) => {
                let store = Arc::new(RedisStore::new(redis)?);
                tokio::spawn(store.clone().warn_if_forgetful());
                store
            }
            StoreConfig::InProcess => {
                tracing::warn!(
                    "PAYMENTS_REDIS_URL is unset: in-process store, run ONE replica only"
                );
                Arc::new(MemoryStore::new())
            }
        };
        let grpc_listener = bind(config.grpc_addr, "gRPC").await?;
        let http_listener = bind(config.http_addr, "HTTP").await?;
        // The sandbox fills in the providers it stands in for before they are registered.
        let mut configured = config.providers.clone();
        let sandbox =
            sandbox::in_process::stand_in(&config, &mut configured, &http_listener).await?;
        let enabled = configured.enable()?;
        let providers = Providers::new(enabled.providers, config.routes.clone())?;
        let payments = Payments::new(store.clone(), providers, config.payments.clone());

        let watchers = Watchers::start(&store);
        let (closing, closing_rx) = watch::channel(false);
        let streams = Streams {
            watchers: watchers.clone(),
            closing: closing_rx,
            open: Arc::default(),
            max_open: config.limits.max_streams,
        };
        let api = PaymentsApi::new(payments.clone(), config.countries.clone(), streams)
            .with_max_in_flight(config.limits.max_in_flight);
        let webhooks = WebhookState::new(payments.clone(), enabled.webhook_secrets);
        let http = crate::http::router(webhooks, store.clone(), payments.providers().clone());
        if config.auth_tokens.is_empty() {
            tracing::warn!("PAYMENTS_AUTH_TOKENS is unset: callers are not authenticated");
        }

        Ok(Self {
            grpc_listener,
            http_listener,
            api,
            http,
            payments,
            watchers,
            closing,
            shutdown_grace: config.shutdown_grace,
            sandbox,
            store,
            auth: BearerAuth::new(config.auth_tokens.clone()),
            tls: config.tls.clone(),
            limits: config.limits.clone(),
        })
    }

    /// The in-process sandbox's base URL, when NOVASEND_BASE_URL was unset (HUB2's, when
    /// it simulates HUB2 too, is this with `/hub2`).
    pub fn sandbox_url(&self) -> Option<String> {
        self.sandbox.as_ref().map(SandboxHandle::base_url)
    }

    /// The bound gRPC address (the real port when built with port 0).
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The bound HTTP address (webhooks, health).
    pub fn http_addr(&self) -> SocketAddr {
        self.http_listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// This replica's open watches, for tests and metrics.
    pub fn watchers(&self) -> Arc<Watchers> {
        self.watchers.clone()
    }

    /// Serves until `shutdown` completes, then drains.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), String> {
        let grpc_addr = self.grpc_addr();
        let http_addr = self.http_addr();
        let (health_reporter, health_service) = tonic_health::server::health_reporter();
        // NOT_SERVING until the store answers. "liveness" only says the process serves: a
        // Redis outage must not make Kubernetes restart every pod.
        set_health(&health_reporter, tonic_health::ServingStatus::NotServing).await;
        health_reporter
            .set_service_status(LIVENESS_SERVICE, tonic_health::ServingStatus::Serving)
            .await;
        // One check before serving, so the first probe already sees the truth.
        let initially = check_store(&self.store, &health_reporter, None).await;
        let health = tokio::spawn(follow_store_health(
            initially,
            self.store.clone(),
            health_reporter.clone(),
            self.closing.subscribe(),
        ));
        let (reflection_v1, reflection_v1alpha) = reflection_services()?;
        let payments_service = payments_service(self.api, &self.limits, self.auth.clone());
        let mut builder = grpc_server(&self.limits, self.tls.as_ref())?;
        let (stop_grpc, grpc_stopped) = tokio::sync::oneshot::channel::<()>();
        let grpc = builder
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(payments_service)
            .serve_with_incoming_shutdown(grpc_incoming(self.grpc_listener), async {
                let _ = grpc_stopped.await;
            });
        let mut grpc = tokio::spawn(grpc);

        let mut http_closing = self.closing.subscribe();
        let http = axum::serve(http_incoming(self.http_listener), self.http)
            .with_graceful_shutdown(async move {
                let _ = http_closing.wait_for(|closing| *closing).await;
            });
        let http = tokio::spawn(async move { http.await });
        let reconciler = tokio::spawn(reconciler::run(
            self.payments.clone(),
            self.closing.subscribe(),
        ));
        tracing::info!(grpc = %grpc_addr, http = %http_addr, "payments-gateway listening");

        tokio::select! {
            result = &mut grpc => {
                let _ = self.closing.send(true);
                return result.map_err(|e| e.to_string())?.map_err(|e| e.to_string());
            }
            () = shutdown => {}
        }

        // The shutdown path, in order:
        // 1. tell load balancers we are going away (health NOT_SERVING), and stop accepting
        //    gRPC connections; calls in flight and open streams carry on;
        // 2. give them the drain period to finish by themselves;
        // 3. then end the streams still open with UNAVAILABLE (callers reconnect elsewhere),
        //    stop the HTTP side and the reconciler, and cut whatever is still running after a
        //    short wait: the process must exit within Kubernetes' grace period.
        tracing::info!(grace = ?self.shutdown_grace, "shutting down: draining");
        health.abort();
        set_health(&health_reporter, tonic_health::ServingStatus::NotServing).await;
        let _ = stop_grpc.send(());
        let drained = tokio::time::timeout(self.shutdown_grace, &mut grpc)
            .await
            .is_ok();
        if !drained {
            tracing::info!(
                open_streams = self.watchers.open_watches(),
                "drain period over; closing open streams"
            );
        }
        let _ = self.closing.send(true);
        if !drained
            && tokio::time::timeout(STREAM_CLOSE_WAIT, &mut grpc)
                .await
                .is_err()
        {
            tracing::warn!("calls still running after the drain period; cutting them");
            grpc.abort();
        }
        let _ = tokio::time::timeout(STREAM_CLOSE_WAIT, http).await;
        reconciler.abort();
        drop(self.sandbox);
        tracing::info!("stopped");
        Ok(())
    }
}

/// The gRPC server builder every `PaymentsService` of this binary is served through (the
/// service, and the bench's bare baseline): timeout, keepalive, the advertised stream limit
/// and TLS when configured. Feed it `grpc_incoming`.
pub fn grpc_server(limits: &Limits, tls: Option<&TlsConfig>) -> Result<Server, String> {
    let mut builder = Server::builder()
        // Advertised, so a client queues in its transport instead of being refused;
        // the bound that sheds is the replica's in-flight limit (PaymentsApi).
        .max_concurrent_streams(
            u32::try_from(limits.max_concurrent_per_connection).unwrap_or(u32::MAX),
        )
        .timeout(limits.request_timeout)
        .http2_keepalive_interval(Some(limits.keepalive_interval))
        .http2_keepalive_timeout(Some(limits.keepalive_timeout));
    if let Some(tls) = tls {
        let mut tls_config =
            ServerTlsConfig::new().identity(Identity::from_pem(&tls.cert, tls.key.expose_secret()));
        if let Some(ca) = &tls.client_ca {
            tls_config = tls_config.client_ca_root(Certificate::from_pem(ca));
        }
        builder = builder
            .tls_config(tls_config)
            .map_err(|e| format!("PAYMENTS_TLS_*: {e}"))?;
    }
    Ok(builder)
}

/// A `PaymentsService` implementation with the message limits and the caller-auth interceptor.
pub fn payments_service<S: PaymentsService>(
    service: S,
    limits: &Limits,
    auth: BearerAuth,
) -> InterceptedService<PaymentsServiceServer<S>, impl Interceptor + Clone + Send + Sync + 'static>
{
    let server = PaymentsServiceServer::new(service)
        .max_decoding_message_size(limits.max_message_bytes)
        .max_encoding_message_size(limits.max_message_bytes);
    InterceptedService::new(server, move |request| auth.check(request))
}

/// Server reflection, v1 and v1alpha, for this API and health.
pub fn reflection_services() -> Result<
    (
        tonic_reflection::server::v1::ServerReflectionServer<
            impl tonic_reflection::server::v1::ServerReflection,
        >,
        tonic_reflection::server::v1alpha::ServerReflectionServer<
            impl tonic_reflection::server::v1alpha::ServerReflection,
        >,
    ),
    String,
> {
    let v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| e.to_string())?;
    let v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .map_err(|e| e.to_string())?;
    Ok((v1, v1alpha))
}

async fn set_health(
    reporter: &tonic_health::server::HealthReporter,
    status: tonic_health::ServingStatus,
) {
    reporter.set_service_status("", status).await;
    reporter.set_service_status(SERVICE_NAME, status).await;
}

/// grpc.health.v1 follows the store: SERVING while it answers, NOT_SERVING while it does not.
async fn follow_store_health(
    mut serving: bool,
    store: Arc<dyn Store>,
    reporter: tonic_health::server::HealthReporter,
    mut stop: watch::Receiver<bool>,
) {
    const EVERY: Duration = Duration::from_secs(1);
    loop {
        tokio::select! {
            _ = stop.wait_for(|stop| *stop) => return,
            () = tokio::time::sleep(EVERY) => {}
        }
        serving = check_store(&store, &reporter, Some(serving)).await;
    }
}

/// Writes to the store and reports a change of its writability; returns it.
async fn check_store(
    store: &Arc<dyn Store>,
    reporter: &tonic_health::server::HealthReporter,
    before: Option<bool>,
) -> bool {
    let reachable = store.check_writable().await.is_ok();
    if before != Some(reachable) {
        if reachable {
            tracing::info!("store writable: SERVING");
            set_health(reporter, tonic_health::ServingStatus::Serving).await;
        } else {
            tracing::warn!("store not writable: NOT_SERVING");
            set_health(reporter, tonic_health::ServingStatus::NotServing).await;
        }
    }
    reachable
}

async fn bind(address: SocketAddr, what: &str) -> Result<TcpListener, String> {
    TcpListener::bind(address)
        .await
        .map_err(|e| format!("cannot listen on {address} for {what}: {e}"))
}

/// Accepted gRPC connections with Nagle's algorithm off. tonic sets TCP_NODELAY only on
/// listeners it binds itself; on ours, a response written in several flushes would wait for
/// the peer's delayed ACK (a 40 ms floor on every unary call).
pub fn grpc_incoming(listener: TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener).with_nodelay(Some(true))
}

/// Accepted HTTP connections (webhooks, health, metrics) with Nagle's algorithm off.
pub fn http_incoming(
    listener: TcpListener,
) -> impl axum::serve::Listener<Io = TcpStream, Addr = SocketAddr> {
    use axum::serve::ListenerExt;
    listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY on an HTTP connection: {e}");
        }
    })
}
