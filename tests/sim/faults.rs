//! The seeded fault scheduler: while the clients run, it kills and restarts replicas and
//! Redis (with or without its data), injects sandbox faults at every step, and turns the
//! proxies bad for short windows. Then it heals everything for the quiet period.

use super::record::Recorder;
use crate::common::fault_proxy::{FaultProxy, ProxyMode};
use crate::common::replica::{DurableRedis, Replica};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Mutex as AsyncMutex;
use tokio::task::JoinHandle;

/// Everything the scheduler may break.
#[derive(Clone)]
pub struct Targets {
    pub recorder: Arc<Recorder>,
    pub replicas: Vec<Arc<AsyncMutex<Replica>>>,
    pub redis: Arc<Mutex<DurableRedis>>,
    pub redis_proxy: Arc<FaultProxy>,
    pub provider_proxy: Arc<FaultProxy>,
    pub sandbox_url: String,
    pub http: reqwest::Client,
    /// Whether this run may restart Redis without its data (at most once).
    pub allow_wipe: bool,
}

pub struct Scheduler {
    targets: Targets,
    rng: StdRng,
    redis_busy: Arc<AtomicBool>,
    wiped: bool,
    proxies_busy_until: [Instant; 2],
    pending: Vec<JoinHandle<()>>,
}

impl Scheduler {
    pub fn new(targets: Targets, seed: u64) -> Self {
        Scheduler {
            targets,
            rng: StdRng::seed_from_u64(seed),
            redis_busy: Arc::new(AtomicBool::new(false)),
            wiped: false,
            proxies_busy_until: [Instant::now(); 2],
            pending: Vec::new(),
        }
    }

    /// Injects faults until `until`, then heals everything.
    pub async fn run(mut self, until: Instant) {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        while Instant::now() + Duration::from_secs(2) < until {
            let gap = self.rng.random_range(600..2200);
            tokio::time::sleep(Duration::from_millis(gap)).await;
            match self.rng.random_range(0..100) {
                0..=17 => self.kill_a_replica().await,
                18..=29 => self.restart_redis(true),
                30..=33 if self.targets.allow_wipe && !self.wiped => self.restart_redis(false),
                34..=69 => self.sandbox_fault().await,
                _ => self.proxy_window(),
            }
        }
        self.heal().await;
    }

    async fn kill_a_replica(&mut self) {
        let recorder = &self.targets.recorder;
        let count = self.targets.replicas.len();
        let up: Vec<usize> = (0..count).filter(|&i| !recorder.is_down(i)).collect();
        if up.len() < 2 {
            return; // Keep one replica serving.
        }
        let victim = up[self.rng.random_range(0..up.len())];
        let down_for = Duration::from_millis(self.rng.random_range(500..3000));
        let replica = self.targets.replicas[victim].clone();
        // Marked first: a call that sees the kill must find it recorded.
        recorder.replica_killed(victim);
        replica.lock().await.kill9();
        recorder.fault(format!("kill -9 replica {victim}, back after {down_for:?}"));
        let recorder = recorder.clone();
        self.pending.push(tokio::spawn(async move {
            tokio::time::sleep(down_for).await;
            bring_back(&recorder, victim, &replica).await;
        }));
    }

    fn restart_redis(&mut self, keep_data: bool) {
        if self.redis_busy.swap(true, Ordering::SeqCst) {
            return;
        }
        let down_for = Duration::from_millis(self.rng.random_range(300..2500));
        let recorder = self.targets.recorder.clone();
        if !keep_data {
            self.wiped = true;
            recorder.wiped();
        }
        let what = if keep_data { "with" } else { "WITHOUT" };
        recorder.fault(format!(
            "kill -9 redis, restart {what} its data after {down_for:?}"
        ));
        let redis = self.targets.redis.clone();
        let busy = self.redis_busy.clone();
        self.pending.push(tokio::spawn(async move {
            let killer = redis.clone();
            let _ = tokio::task::spawn_blocking(move || lock(&killer).kill9()).await;
            tokio::time::sleep(down_for).await;
            let restarted =
                tokio::task::spawn_blocking(move || lock(&redis).restart(keep_data)).await;
            if let Ok(Err(e)) = restarted {
                recorder.fault(format!("redis did not come back: {e}"));
            }
            busy.store(false, Ordering::SeqCst);
        }));
    }

    async fn sandbox_fault(&mut self) {
        let fault = self.pick_sandbox_fault();
        let sent = self
            .targets
            .http
            .post(format!("{}/_sandbox/faults", self.targets.sandbox_url))
            .json(&fault)
            .send()
            .await;
        let accepted = sent.is_ok_and(|r| r.status().as_u16() == 201);
        let note = if accepted { "" } else { " (refused!)" };
        self.targets
            .recorder
            .fault(format!("sandbox fault {fault}{note}"));
    }

    /// Any fault the sandbox knows, at any step: create, read or refund.
    fn pick_sandbox_fault(&mut self) -> Value {
        let rng = &mut self.rng;
        let (method, path) = [
            ("POST", "/v1/payin/sessions"),
            ("GET", "/v1/payin/"),
            ("POST", "/v1/payin/"),
        ][rng.random_range(0..3)];
        let mut fault = match rng.random_range(0..10) {
            // Beyond PAYMENTS_UPSTREAM_TIMEOUT (1 s): a timeout, processed meanwhile.
            0 => json!({"kind": "latency", "latency_ms": rng.random_range(1100..2500)}),
            1 => json!({"kind": "drop"}),
            2 => json!({"kind": "drop_after"}),
            3 => {
                let status = [500, 502, 503][rng.random_range(0..3)];
                json!({"kind": "status", "status": status})
            }
            4 => json!({"kind": "status", "status": 429}),
            5 if method == "POST" => json!({"kind": "status", "status": 409}),
            6 => json!({"kind": "malformed"}),
            7 | 8 => json!({"kind": "malformed_after"}),
            _ => json!({"kind": "latency", "latency_ms": rng.random_range(100..800)}),
        };
        fault["method"] = json!(method);
        fault["path_prefix"] = json!(path);
        if rng.random_bool(0.25) {
            fault["share"] = json!(0.3);
            fault["count"] = json!(rng.random_range(2..6));
        } else {
            fault["count"] = json!(rng.random_range(1..4));
        }
        fault
    }

    /// The Redis or the provider proxy turns bad for a short window, then passes again.
    fn proxy_window(&mut self) {
        let which = self.rng.random_range(0..2);
        if self.proxies_busy_until[which] > Instant::now() {
            return;
        }
        let proxy = [&self.targets.redis_proxy, &self.targets.provider_proxy][which].clone();
        let mode = match self.rng.random_range(0..4) {
            0 => ProxyMode::Latency(Duration::from_millis(self.rng.random_range(200..1500))),
            1 => ProxyMode::Reset,
            2 => ProxyMode::Blackhole,
            _ => ProxyMode::HalfOpen,
        };
        let window = Duration::from_millis(self.rng.random_range(300..2500));
        self.proxies_busy_until[which] = Instant::now() + window;
        let name = ["redis", "provider"][which];
        self.targets
            .recorder
            .fault(format!("{name} proxy {mode:?} for {window:?}"));
        proxy.set_mode(mode);
        self.pending.push(tokio::spawn(async move {
            tokio::time::sleep(window).await;
            proxy.set_mode(ProxyMode::Pass);
        }));
    }

    /// No more faults: pending restarts done, sandbox faults cleared, proxies passing, Redis
    /// and every replica up and serving.
    async fn heal(self) {
        for task in self.pending {
            let _ = tokio::time::timeout(Duration::from_secs(40), task).await;
        }
        let targets = self.targets;
        let _ = targets
            .http
            .delete(format!("{}/_sandbox/faults", targets.sandbox_url))
            .send()
            .await;
        targets.redis_proxy.set_mode(ProxyMode::Pass);
        targets.provider_proxy.set_mode(ProxyMode::Pass);
        let redis = targets.redis.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let mut redis = lock(&redis);
            if !redis.process.is_running() {
                let _ = redis.restart(true);
            }
        })
        .await;
        for (i, replica) in targets.replicas.iter().enumerate() {
            if targets.recorder.is_down(i) || !replica.lock().await.process.is_running() {
                bring_back(&targets.recorder, i, replica).await;
            }
        }
        targets.recorder.fault("faults over: healed".into());
    }
}

/// Restarts a replica on its ports and waits (bounded) until it serves.
async fn bring_back(recorder: &Recorder, index: usize, replica: &AsyncMutex<Replica>) {
    let mut replica = replica.lock().await;
    let started = match replica.restart() {
        Ok(()) => replica.wait_serving(Duration::from_secs(25)).await,
        Err(e) => Err(e),
    };
    match started {
        Ok(()) => recorder.replica_serving(index),
        Err(e) => recorder.fault(format!("replica {index} did not come back: {e}")),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}
