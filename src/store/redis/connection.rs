//! The store's connection to Redis, and one round trip over it: bounded in time, a client
//! span, counted when it fails. Whatever the topology (contract §10), a connection that times
//! out (a half-open socket, a silent server), answers READONLY (a demoted primary) or loses
//! its socket is dropped, and the next call dials again: one Redis through a lazy
//! ConnectionManager, a cluster through redis-rs's cluster client (which rediscovers its
//! slots), a primary through the sentinels (asked again at every dial, so a failover is
//! followed). redis-rs's ConnectionManager alone reconnects only on errors it deems
//! unrecoverable, and always to the same address.

use super::KindDescription;
use crate::config::RedisTopology;
use crate::store::StoreError;
use crate::telemetry::metrics::REDIS_ERRORS;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, ServerErrorKind, Value};
use secrecy::ExposeSecret;
use std::sync::RwLock;
use std::time::Duration;

/// Bounds every Redis round trip, including the wait for a (re)connection.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(3);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// How to reach the primary (or primaries) again.
pub enum Dialer {
    Single(redis::Client),
    Cluster {
        client: redis::cluster::ClusterClient,
        seeds: Vec<redis::ConnectionInfo>,
    },
    Sentinel(tokio::sync::Mutex<SentinelClient>),
}

/// A live connection, whatever the topology.
#[derive(Clone)]
pub enum Link {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Link {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Link::Single(c) => c.req_packed_command(cmd),
            Link::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Link::Single(c) => c.req_packed_commands(cmd, offset, count),
            Link::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Link::Single(c) => c.get_db(),
            Link::Cluster(c) => c.get_db(),
        }
    }
}

/// Nagle's algorithm would hold a script's small request for the peer's delayed ACK.
fn tcp() -> redis::io::tcp::TcpSettings {
    redis::io::tcp::TcpSettings::default().set_nodelay(true)
}

fn invalid(e: RedisError) -> String {
    format!("invalid Redis address: {}", e.kind_description())
}

impl Dialer {
    /// Prepares without dialing: the service starts even while Redis is away.
    pub fn new(topology: &RedisTopology) -> Result<Self, String> {
        use redis::IntoConnectionInfo;
        let info = |url: &str| {
            url.into_connection_info()
                .map(|info| info.set_tcp_settings(tcp()))
                .map_err(invalid)
        };
        Ok(match topology {
            RedisTopology::Single(url) => {
                Dialer::Single(redis::Client::open(info(url.expose_secret())?).map_err(invalid)?)
            }
            RedisTopology::Cluster(seeds) => {
                let seeds = seeds
                    .iter()
                    .map(|url| info(url.expose_secret()))
                    .collect::<Result<Vec<_>, _>>()?;
                let client = redis::cluster::ClusterClient::builder(seeds.clone())
                    .connection_timeout(CONNECT_TIMEOUT)
                    .response_timeout(RESPONSE_TIMEOUT)
                    .retries(2)
                    .max_retry_wait(500)
                    .tcp_settings(tcp())
                    .build()
                    .map_err(invalid)?;
                Dialer::Cluster { client, seeds }
            }
            RedisTopology::Sentinel { sentinels, master } => {
                let nodes = sentinels
                    .iter()
                    .map(|s| info(&format!("redis://{s}")))
                    .collect::<Result<Vec<_>, _>>()?;
                let to_primary = SentinelNodeConnectionInfo::default().set_tcp_settings(tcp());
                let client = SentinelClient::build(
                    nodes,
                    master.clone(),
                    Some(to_primary),
                    SentinelServerType::Master,
                )
                .map_err(invalid)?;
                Dialer::Sentinel(tokio::sync::Mutex::new(client))
            }
        })
    }

    /// A client for one node that hears every announcement: the one Redis, the primary the
    /// sentinels name now, or one of the cluster's seeds (`attempt` picks which: a cluster
    /// broadcasts every PUBLISH to all of its nodes).
    pub async fn subscriber_client(&self, attempt: usize) -> Result<redis::Client, RedisError> {
        match self {
            Dialer::Single(client) => Ok(client.clone()),
            Dialer::Cluster { seeds, .. } => {
                redis::Client::open(seeds[attempt % seeds.len()].clone())
            }
            Dialer::Sentinel(sentinel) => sentinel.lock().await.async_get_client().await,
        }
    }

    /// A new connection; bounded by the caller.
    async fn dial(&self) -> Result<Link, RedisError> {
        let config = || {
            ConnectionManagerConfig::new()
                .set_connection_timeout(Some(CONNECT_TIMEOUT))
                .set_response_timeout(Some(RESPONSE_TIMEOUT))
                .set_number_of_retries(2)
                .set_max_delay(Duration::from_millis(500))
        };
        match self {
            Dialer::Single(client) => {
                ConnectionManager::new_lazy_with_config(client.clone(), config()).map(Link::Single)
            }
            Dialer::Cluster { client, .. } => {
                client.get_async_connection().await.map(Link::Cluster)
            }
            Dialer::Sentinel(sentinel) => {
                let primary = sentinel.lock().await.async_get_client().await?;
                ConnectionManager::new_lazy_with_config(primary, config()).map(Link::Single)
            }
        }
    }
}

pub struct Connection {
    dialer: Dialer,
    /// The link in use (none until dialed, or after it was dropped), and how many times it
    /// was dropped.
    current: RwLock<(u64, Option<Link>)>,
    /// One dial at a time: callers arriving meanwhile use its link.
    dialing: tokio::sync::Mutex<()>,
}

impl Connection {
    pub fn new(dialer: Dialer) -> Self {
        Self {
            dialer,
            current: RwLock::new((0, None)),
            dialing: tokio::sync::Mutex::new(()),
        }
    }

    pub fn dialer(&self) -> &Dialer {
        &self.dialer
    }

    /// One round trip: `call` gets the connection to use.
    pub async fn call<T, F, Fut>(&self, operation: &'static str, call: F) -> Result<T, StoreError>
    where
        F: FnOnce(Link) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        use tracing::Instrument;
        // Debug level: exported with the trace, but not built for every round trip when only
        // info logs are wanted.
        let span = tracing::debug_span!(
            "redis",
            otel.name = %format_args!("redis {operation}"),
            otel.kind = "client",
            db.system = "redis",
            db.operation = operation,
        );
        // The link the call used: a timeout drops that one, not one dialed since.
        let used = std::sync::atomic::AtomicU64::new(u64::MAX);
        let outcome = tokio::time::timeout(OPERATION_TIMEOUT, async {
            let (generation, link) = self.link().await?;
            used.store(generation, std::sync::atomic::Ordering::Relaxed);
            Ok::<_, (u64, RedisError)>(call(link).await.map_err(|e| (generation, e)))
        })
        .instrument(span)
        .await;
        let outcome = match outcome {
            Ok(Ok(Ok(value))) => return Ok(value),
            Ok(Ok(Err(failed))) | Ok(Err(failed)) => Ok(failed),
            Err(elapsed) => Err(elapsed),
        };
        metrics::counter!(REDIS_ERRORS, "operation" => operation).increment(1);
        match outcome {
            Ok((generation, e)) => {
                tracing::warn!(operation, error = %e.kind_description(), "redis call failed");
                if must_redial(&e) {
                    self.drop_link(generation);
                }
                Err(StoreError::Unavailable(format!(
                    "Redis error ({})",
                    e.kind_description()
                )))
            }
            Err(_) => {
                tracing::warn!(operation, "redis call timed out");
                // Still dialing (u64::MAX): there is no link to drop yet.
                self.drop_link(used.into_inner());
                Err(StoreError::Unavailable(
                    "Redis did not answer in time".into(),
                ))
            }
        }
    }

    /// The link in use, dialed first when there is none.
    async fn link(&self) -> Result<(u64, Link), (u64, RedisError)> {
        if let Some(current) = self.current_link() {
            return Ok(current);
        }
        let _dialing = self.dialing.lock().await;
        if let Some(current) = self.current_link() {
            return Ok(current);
        }
        let generation = self.current.read().unwrap_or_else(|p| p.into_inner()).0;
        let link = self.dialer.dial().await.map_err(|e| (generation, e))?;
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        current.1 = Some(link.clone());
        Ok((current.0, link))
    }

    fn current_link(&self) -> Option<(u64, Link)> {
        let current = self.current.read().unwrap_or_else(|p| p.into_inner());
        current.1.clone().map(|link| (current.0, link))
    }

    /// Drops the link of `generation` (unless another call already did): the next call
    /// dials again, and finds the primary again.
    fn drop_link(&self, generation: u64) {
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        if current.0 == generation {
            tracing::warn!("dropping a Redis connection that failed, timed out or is read-only");
            *current = (generation + 1, None);
        }
    }
}

/// Errors after which the same connection (or address) may never work again: a timeout, a
/// demoted primary, a lost or refused socket, a cluster that lost a node.
pub(super) fn must_redial(e: &RedisError) -> bool {
    e.is_timeout()
        || e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        // A reply of an unexpected shape says nothing of the connection.
        || (e.is_unrecoverable_error() && e.kind() != ErrorKind::Parse)
        || matches!(
            e.kind(),
            ErrorKind::Server(ServerErrorKind::ReadOnly)
                | ErrorKind::Server(ServerErrorKind::ClusterDown)
                | ErrorKind::Server(ServerErrorKind::MasterDown)
                // Surfaced only by a pipeline (the cluster client follows them otherwise).
                | ErrorKind::Server(ServerErrorKind::Moved)
                | ErrorKind::Server(ServerErrorKind::Ask)
        )
}
