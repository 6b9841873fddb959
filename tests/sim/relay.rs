//! The webhook relay: the sandbox sends its webhooks here, and the relay forwards each to a
//! random replica, as a load balancer would — sometimes twice, late (so out of order), or
//! not at all, while faults are on.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SIGNATURE: &str = "x-novasend-signature";

#[derive(Default, Debug)]
pub struct RelayStats {
    pub received: AtomicU64,
    pub dropped: AtomicU64,
    pub duplicated: AtomicU64,
    pub delayed: AtomicU64,
    pub delivered: AtomicU64,
    pub failed: AtomicU64,
}

impl RelayStats {
    pub fn summary(&self) -> String {
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "webhooks: {} received, {} dropped, {} duplicated, {} delayed, {} delivered, {} not delivered",
            n(&self.received),
            n(&self.dropped),
            n(&self.duplicated),
            n(&self.delayed),
            n(&self.delivered),
            n(&self.failed)
        )
    }
}

struct Shared {
    targets: Vec<String>,
    rng: Mutex<StdRng>,
    /// Off during the quiet period: every webhook delivered once, at once.
    faulty: AtomicBool,
    stats: Arc<RelayStats>,
    http: reqwest::Client,
}

pub struct Relay {
    pub port: u16,
    pub stats: Arc<RelayStats>,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    pub async fn start(seed: u64, targets: Vec<String>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let stats = Arc::new(RelayStats::default());
        let shared = Arc::new(Shared {
            targets,
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            faulty: AtomicBool::new(true),
            stats: stats.clone(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(3))
                .build()
                .unwrap(),
        });
        let router = axum::Router::new()
            .route("/relay", post(relay))
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Relay {
            port,
            stats,
            shared,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/relay", self.port)
    }

    pub fn set_faulty(&self, faulty: bool) {
        self.shared.faulty.store(faulty, Ordering::SeqCst);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One planned delivery: to which replica, after how long.
struct Delivery {
    target: String,
    delay: Duration,
}

async fn relay(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    shared.stats.received.fetch_add(1, Ordering::Relaxed);
    let signature = headers
        .get(SIGNATURE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    for delivery in plan(&shared) {
        let shared = shared.clone();
        let body = body.clone();
        let signature = signature.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delivery.delay).await;
            deliver(&shared, &delivery.target, body, signature).await;
        });
    }
    StatusCode::OK
}

fn plan(shared: &Shared) -> Vec<Delivery> {
    if shared.faulty.load(Ordering::SeqCst) {
        return faulty_plan(shared);
    }
    let mut rng = shared.rng.lock().unwrap_or_else(|p| p.into_inner());
    vec![Delivery {
        target: shared.targets[rng.random_range(0..shared.targets.len())].clone(),
        delay: Duration::ZERO,
    }]
}

/// While faults are on: 10 % lost, 15 % twice, 30 % late by up to 3 s (so reordered).
fn faulty_plan(shared: &Shared) -> Vec<Delivery> {
    let mut rng = shared.rng.lock().unwrap_or_else(|p| p.into_inner());
    let stats = &shared.stats;
    if rng.random_bool(0.10) {
        stats.dropped.fetch_add(1, Ordering::Relaxed);
        return Vec::new();
    }
    let copies = if rng.random_bool(0.15) {
        stats.duplicated.fetch_add(1, Ordering::Relaxed);
        2
    } else {
        1
    };
    (0..copies)
        .map(|_| {
            let delay = if rng.random_bool(0.3) {
                stats.delayed.fetch_add(1, Ordering::Relaxed);
                rng.random_range(200..3000)
            } else {
                0
            };
            Delivery {
                target: shared.targets[rng.random_range(0..shared.targets.len())].clone(),
                delay: Duration::from_millis(delay),
            }
        })
        .collect()
}

async fn deliver(shared: &Shared, target: &str, body: Bytes, signature: Option<String>) {
    let mut request = shared
        .http
        .post(target)
        .header("content-type", "application/json")
        .body(body);
    if let Some(signature) = signature {
        request = request.header(SIGNATURE, signature);
    }
    let counter = match request.send().await {
        Ok(response) if response.status().is_success() => &shared.stats.delivered,
        _ => &shared.stats.failed,
    };
    counter.fetch_add(1, Ordering::Relaxed);
}
