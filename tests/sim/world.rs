//! The simulated production: one durable redis-server behind a fault proxy, the sandbox as
//! its own process behind another, 2–3 replicas of the real binary, and the webhook relay.

use super::record::Recorder;
use super::relay::Relay;
use crate::common::fault_proxy::FaultProxy;
use crate::common::replica::{DurableRedis, Replica, RunDir, SandboxProcess};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::sync::Mutex as AsyncMutex;

pub const API_KEY: &str = "sim-api-key";
pub const API_CLIENT: &str = "sim-api-client";
const WEBHOOK_SECRET: &str = "sim-webhook-secret";

pub struct World {
    pub dir: RunDir,
    pub redis: Arc<Mutex<DurableRedis>>,
    pub redis_proxy: Arc<FaultProxy>,
    pub sandbox: SandboxProcess,
    pub provider_proxy: Arc<FaultProxy>,
    pub replicas: Vec<Arc<AsyncMutex<Replica>>>,
    pub replica_urls: Vec<String>,
    pub relay: Relay,
    pub recorder: Arc<Recorder>,
}

fn pairs(list: &[(&str, String)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

impl World {
    pub async fn start(seed: u64, replicas: usize) -> Result<World, String> {
        // Kept unless the run goes well: its logs explain a failed start too.
        let mut dir = RunDir::new(&format!("payments-sim-{seed}"));
        dir.keep();
        let redis = tokio::task::spawn_blocking({
            let path = dir.path.clone();
            move || DurableRedis::start(&path)
        })
        .await
        .map_err(|e| e.to_string())??;
        let redis_proxy = FaultProxy::start(loopback(redis.port)).await;

        // Ports first: the relay must know where the replicas' webhooks go.
        let ports: Vec<(u16, u16)> = (0..replicas)
            .map(|_| (crate::common::stable_port(), crate::common::stable_port()))
            .collect();
        let webhook_urls = ports
            .iter()
            .map(|(_, http)| format!("http://127.0.0.1:{http}/webhooks/novasend"))
            .collect();
        let relay = Relay::start(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15), webhook_urls).await;
        let sandbox_env = pairs(&[
            ("SANDBOX_API_KEY", API_KEY.into()),
            ("SANDBOX_API_CLIENT", API_CLIENT.into()),
            ("SANDBOX_STEP_DELAY", "300ms".into()),
            ("SANDBOX_EXPIRY", "4s".into()),
            ("SANDBOX_WEBHOOK_URL", relay.url()),
            ("SANDBOX_WEBHOOK_SECRET", WEBHOOK_SECRET.into()),
            ("RUST_LOG", "info".into()),
        ]);
        let sandbox = SandboxProcess::start(&dir.path, &sandbox_env).await?;
        let provider_proxy = FaultProxy::start(loopback(sandbox.port)).await;

        let env = replica_env(redis_proxy.port(), provider_proxy.port());
        let mut replica_list = Vec::new();
        for (i, (grpc, http)) in ports.into_iter().enumerate() {
            let mut replica = Replica::new(&format!("replica-{i}"), &dir.path, &env, grpc, http);
            if let Err(first) = replica.start().await {
                // Once more on the same ports, in case the first start lost a race for them.
                eprintln!("{first}\nstarting replica-{i} again");
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                replica.start().await?;
            }
            replica_list.push(replica);
        }
        let replica_urls = replica_list.iter().map(Replica::grpc_url).collect();
        Ok(World {
            dir,
            redis: Arc::new(Mutex::new(redis)),
            redis_proxy: Arc::new(redis_proxy),
            sandbox,
            provider_proxy: Arc::new(provider_proxy),
            replicas: replica_list
                .into_iter()
                .map(|r| Arc::new(AsyncMutex::new(r)))
                .collect(),
            replica_urls,
            relay,
            recorder: Arc::new(Recorder::new(replicas)),
        })
    }

    pub fn sandbox_url(&self) -> String {
        self.sandbox.base_url()
    }
}

/// The replicas' settings: Redis and Novasend through the proxies, short timeouts.
fn replica_env(redis_port: u16, provider_port: u16) -> Vec<(String, String)> {
    pairs(&[
        (
            "PAYMENTS_REDIS_URL",
            format!("redis://127.0.0.1:{redis_port}"),
        ),
        (
            "NOVASEND_BASE_URL",
            format!("http://127.0.0.1:{provider_port}"),
        ),
        ("NOVASEND_API_KEY", API_KEY.into()),
        ("NOVASEND_API_CLIENT", API_CLIENT.into()),
        ("NOVASEND_WEBHOOK_SECRET", WEBHOOK_SECRET.into()),
        ("PAYMENTS_UPSTREAM_TIMEOUT", "1s".into()),
        ("PAYMENTS_POLL_INTERVAL", "5s".into()),
        ("PAYMENTS_IDEMPOTENCY_WAIT", "5s".into()),
        ("PAYMENTS_REQUEST_TIMEOUT", "10s".into()),
        ("PAYMENTS_SHUTDOWN_GRACE", "1s".into()),
        ("PAYMENTS_MAX_CONCURRENT_PER_CONNECTION", "256".into()),
        ("RUST_LOG", "info".into()),
    ])
}
