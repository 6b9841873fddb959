//! The store's connection to Redis, and one round trip over it: bounded in time, a client
//! span, counted when it fails. redis-rs's ConnectionManager reconnects only on errors it
//! deems unrecoverable; a connection that times out (a half-open socket, a silent server) or
//! answers READONLY (a demoted primary) would stay in use for ever. Such a connection is
//! dropped here, and the next call dials again.

use super::KindDescription;
use crate::store::StoreError;
use crate::telemetry::metrics::REDIS_ERRORS;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, RedisError, ServerErrorKind};
use std::sync::RwLock;
use std::time::Duration;

/// Bounds every Redis round trip, including the wait for a reconnection.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(3);

pub struct Connection {
    client: redis::Client,
    config: ConnectionManagerConfig,
    /// The manager in use, and how many times it was replaced.
    current: RwLock<(u64, ConnectionManager)>,
}

impl Connection {
    /// Prepares without dialing: the service starts even while Redis is away.
    pub fn new(client: redis::Client) -> Result<Self, String> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let manager = ConnectionManager::new_lazy_with_config(client.clone(), config.clone())
            .map_err(|e| format!("cannot prepare the Redis connection: {e}"))?;
        Ok(Self {
            client,
            config,
            current: RwLock::new((0, manager)),
        })
    }

    /// One round trip: `call` gets the connection to use.
    pub async fn call<T, F, Fut>(&self, operation: &'static str, call: F) -> Result<T, StoreError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        use tracing::Instrument;
        let (generation, manager) = self
            .current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let span = tracing::info_span!(
            "redis",
            otel.name = %format_args!("redis {operation}"),
            otel.kind = "client",
            db.system = "redis",
            db.operation = operation,
        );
        let outcome = tokio::time::timeout(OPERATION_TIMEOUT, call(manager))
            .instrument(span)
            .await;
        if !matches!(outcome, Ok(Ok(_))) {
            metrics::counter!(REDIS_ERRORS, "operation" => operation).increment(1);
        }
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                tracing::warn!(operation, error = %e.kind_description(), "redis call failed");
                if e.is_timeout() || e.kind() == ErrorKind::Server(ServerErrorKind::ReadOnly) {
                    self.replace(generation);
                }
                Err(StoreError::Unavailable(format!(
                    "Redis error ({})",
                    e.kind_description()
                )))
            }
            Err(_) => {
                tracing::warn!(operation, "redis call timed out");
                self.replace(generation);
                Err(StoreError::Unavailable(
                    "Redis did not answer in time".into(),
                ))
            }
        }
    }

    /// Drops the connection of `generation` (unless another call already did) for a new one,
    /// dialed by the next call.
    fn replace(&self, generation: u64) {
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        if current.0 != generation {
            return;
        }
        match ConnectionManager::new_lazy_with_config(self.client.clone(), self.config.clone()) {
            Ok(manager) => {
                tracing::warn!("dropping a Redis connection that timed out or is read-only");
                *current = (generation + 1, manager);
            }
            Err(e) => {
                tracing::warn!(error = %e.kind_description(), "cannot prepare a new Redis connection")
            }
        }
    }
}
