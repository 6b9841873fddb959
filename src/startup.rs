//! Wiring: builds the store, the provider and the gRPC server from a `Config`, binds the
//! listener (port 0 in tests) and runs until told to stop.

use crate::api::PaymentsApi;
use crate::config::{Config, StoreConfig};
use crate::payments::Payments;
use crate::proto::payments_service_server::PaymentsServiceServer;
use crate::provider::PaymentProvider;
use crate::provider::novasend::NovasendClient;
use crate::store::Store;
use crate::store::memory::MemoryStore;
use crate::store::redis::RedisStore;
use secrecy::ExposeSecret;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::Server;

pub struct Application {
    listener: TcpListener,
    address: SocketAddr,
    api: PaymentsApi,
    shutdown_grace: Duration,
}

/// Installs the one rustls crypto provider of the whole binary (ring). Idempotent.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl Application {
    pub async fn build(config: Config) -> Result<Self, String> {
        install_crypto_provider();
        let store: Arc<dyn Store> = match &config.store {
            StoreConfig::Redis(url) => Arc::new(RedisStore::new(url.expose_secret())?),
            StoreConfig::InProcess => {
                tracing::warn!(
                    "PAYMENTS_REDIS_URL is unset: in-process store, run ONE replica only"
                );
                Arc::new(MemoryStore::new())
            }
        };
        let novasend = config.novasend.clone().ok_or(
            "NOVASEND_BASE_URL is unset and this build has no built-in sandbox yet; set NOVASEND_BASE_URL, NOVASEND_API_KEY and NOVASEND_API_CLIENT",
        )?;
        tracing::info!(base_url = %novasend.base_url, "novasend provider");
        let provider: Arc<dyn PaymentProvider> = Arc::new(NovasendClient::new(novasend)?);
        let payments = Payments::new(store, provider, config.payments.clone());
        let api = PaymentsApi::new(payments, config.countries.clone());

        let listener = TcpListener::bind(config.grpc_addr)
            .await
            .map_err(|e| format!("cannot listen on {} for gRPC: {e}", config.grpc_addr))?;
        let address = listener.local_addr().map_err(|e| e.to_string())?;
        Ok(Self {
            listener,
            address,
            api,
            shutdown_grace: config.shutdown_grace,
        })
    }

    /// The bound gRPC address (the real port when built with port 0).
    pub fn grpc_addr(&self) -> SocketAddr {
        self.address
    }

    /// Serves until `shutdown` completes, then drains.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), String> {
        let (health_reporter, health_service) = tonic_health::server::health_reporter();
        health_reporter
            .set_serving::<PaymentsServiceServer<PaymentsApi>>()
            .await;
        let reflection_v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
            .build_v1()
            .map_err(|e| e.to_string())?;
        let reflection_v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
            .build_v1alpha()
            .map_err(|e| e.to_string())?;

        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = Server::builder()
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(PaymentsServiceServer::new(self.api))
            .serve_with_incoming_shutdown(TcpListenerStream::new(self.listener), async {
                let _ = stop_rx.await;
            });
        tracing::info!(grpc = %self.address, "payments-gateway listening");
        let mut server = tokio::spawn(server);

        tokio::select! {
            result = &mut server => {
                return result.map_err(|e| e.to_string())?.map_err(|e| e.to_string());
            }
            () = shutdown => {}
        }

        // Shutdown path: first tell load balancers we are going away, then stop accepting,
        // then give in-flight calls the drain period to finish. Whatever still runs after
        // that is cut off: the process must exit within Kubernetes' grace period.
        tracing::info!(grace = ?self.shutdown_grace, "shutting down: draining in-flight calls");
        health_reporter
            .set_not_serving::<PaymentsServiceServer<PaymentsApi>>()
            .await;
        health_reporter
            .set_service_status("", tonic_health::ServingStatus::NotServing)
            .await;
        let _ = stop_tx.send(());
        match tokio::time::timeout(self.shutdown_grace, &mut server).await {
            Ok(joined) => joined
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string()),
            Err(_) => {
                tracing::warn!("drain period over; closing the remaining calls");
                server.abort();
                Ok(())
            }
        }
    }
}
