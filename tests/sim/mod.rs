//! The seeded fault simulation: set up the world, let merchants work while the scheduler
//! injects faults, heal, wait out a quiet period, then check I1–I6.

mod calls;
mod clients;
mod faults;
mod invariants;
#[cfg(test)]
mod proxy_modes;
mod record;
mod relay;
pub mod report;
mod truth;
mod world;

use calls::Calls;
use clients::Merchant;
use faults::{Scheduler, Targets};
use payments_gateway::sandbox::JournalPage;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use report::Report;
use std::time::{Duration, Instant};
use world::World;

pub struct SimConfig {
    /// How long merchants start new payins while faults are injected.
    pub run: Duration,
    /// After healing and the merchants' last call: more than the poll interval (5 s) plus
    /// the sandbox's longest lifecycle (expiry 4 s), so every cache is refreshed.
    pub quiet: Duration,
    pub merchants: usize,
}

impl SimConfig {
    /// Defaults, with SIM_SECONDS overriding the run's length.
    pub fn from_env() -> Self {
        let run = std::env::var("SIM_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(20);
        SimConfig {
            run: Duration::from_secs(run),
            quiet: Duration::from_secs(11),
            merchants: 6,
        }
    }
}

/// One run of the simulation for `seed`; every choice it makes comes from the seed.
pub async fn simulate(seed: u64, config: &SimConfig) -> Report {
    let began = Instant::now();
    let mut rng = StdRng::seed_from_u64(seed);
    let replicas = rng.random_range(2..=3);
    let allow_wipe = rng.random_bool(0.5);
    let mut report = Report {
        seed,
        replicas,
        took: Duration::ZERO,
        setup_error: None,
        calls: Vec::new(),
        streams: Vec::new(),
        faults: Vec::new(),
        webhooks: String::new(),
        journal_writes: 0,
        violations: Default::default(),
        log_dir: String::new(),
    };
    let mut world = match World::start(seed, replicas).await {
        Ok(world) => world,
        Err(e) => {
            report.setup_error = Some(e);
            report.took = began.elapsed();
            return report;
        }
    };
    report.log_dir = world.dir.path.display().to_string();
    run_and_check(&world, &mut rng, config, allow_wipe, &mut report).await;
    report.took = began.elapsed();
    if report.is_clean() {
        world.dir.release();
    }
    report
}

async fn run_and_check(
    world: &World,
    rng: &mut StdRng,
    config: &SimConfig,
    allow_wipe: bool,
    report: &mut Report,
) {
    let recorder = world.recorder.clone();
    let run_end = Instant::now() + config.run;
    let calls = Calls::new(
        recorder.clone(),
        &world.replica_urls,
        run_end + Duration::from_secs(20),
    );
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("an HTTP client");
    let (stop_streams, streams_stopped) = tokio::sync::watch::channel(false);
    let merchants: Vec<_> = (0..config.merchants)
        .map(|index| {
            let merchant = Merchant {
                calls: calls.clone(),
                index,
                rng: StdRng::seed_from_u64(rng.random()),
                seed: report.seed,
                until: run_end,
                stop_streams: streams_stopped.clone(),
                watchers: Vec::new(),
                http: http.clone(),
            };
            tokio::spawn(merchant.run())
        })
        .collect();
    let targets = Targets {
        recorder: recorder.clone(),
        replicas: world.replicas.clone(),
        redis: world.redis.clone(),
        redis_proxy: world.redis_proxy.clone(),
        provider_proxy: world.provider_proxy.clone(),
        sandbox_url: world.sandbox_url(),
        http: http.clone(),
        allow_wipe,
    };
    Scheduler::new(targets, rng.random()).run(run_end).await;
    world.relay.set_faulty(false);

    let watchers = finish_merchants(merchants, &recorder).await;
    tokio::time::sleep(config.quiet).await;

    let created = truth::created_references(&recorder);
    let provider = truth::provider_truth(&http, &world.sandbox_url(), &created).await;
    let i5 = truth::check_against_provider(&calls, &provider, &created).await;
    let _ = stop_streams.send(true);
    for watcher in watchers {
        let _ = tokio::time::timeout(Duration::from_secs(5), watcher).await;
    }
    let journal = match fetch_journal(&http, &world.sandbox_url()).await {
        Ok(journal) => journal,
        Err(e) => {
            // Without the journal I1 and I2 cannot be judged: the run fails, saying why.
            report.setup_error = Some(e);
            JournalPage::default()
        }
    };

    let references = recorder.references();
    report.calls = recorder.calls();
    report.streams = recorder.streams();
    report.faults = recorder.faults();
    report.webhooks = world.relay.stats.summary();
    report.journal_writes = journal.entries.len();
    let v = &mut report.violations;
    v.insert(
        "I1",
        invariants::at_most_one_payin(&journal.entries, &references),
    );
    v.insert(
        "I2",
        invariants::at_most_one_refund(&journal.entries, &references),
    );
    v.insert("I3", invariants::every_call_answered(&report.calls));
    v.insert(
        "I4",
        invariants::streams_move_forward(&report.streams, &provider),
    );
    let mut i5 = i5;
    i5.extend(invariants::created_upstream_is_never_denied(
        &journal.entries,
        &report.calls,
        &references,
        recorder.wipes(),
    ));
    v.insert("I5", i5);
    v.insert("I6", invariants::replays_are_identical(&report.calls));
}

/// Waits (bounded) for the merchants' last payins; returns their stream watchers.
async fn finish_merchants(
    merchants: Vec<tokio::task::JoinHandle<Vec<tokio::task::JoinHandle<()>>>>,
    recorder: &record::Recorder,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut watchers = Vec::new();
    for (i, merchant) in merchants.into_iter().enumerate() {
        match tokio::time::timeout(Duration::from_secs(120), merchant).await {
            Ok(Ok(started)) => watchers.extend(started),
            Ok(Err(e)) => recorder.fault(format!("merchant {i} panicked: {e}")),
            Err(_) => recorder.fault(format!("merchant {i} still busy after 120 s")),
        }
    }
    watchers
}

async fn fetch_journal(http: &reqwest::Client, sandbox_url: &str) -> Result<JournalPage, String> {
    let response = http
        .get(format!("{sandbox_url}/_sandbox/journal"))
        .send()
        .await
        .map_err(|e| format!("the sandbox journal cannot be read: {e}"))?;
    response
        .json()
        .await
        .map_err(|e| format!("the sandbox journal is not JSON: {e}"))
}
