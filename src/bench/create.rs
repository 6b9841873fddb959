//! Figure c: CreatePayin at 64 in flight over a few connections: CPU of the service and of
//! Redis per create, errors, and the latency added over calling the sandbox directly when
//! callers arrive at half the rate the service sustained (busy, not saturated).

use super::calls::{WAITING_MSISDN, create_request};
use super::commandstats::CommandStats;
use super::load::{self, Load, Outcome, connect, ms};
use super::procs::{API_CLIENT, API_KEY, Ports, Redis, RunDir, Sandbox, Service};
use super::report::Report;
use super::sys::{self, ClockTicks};
use crate::proto::payments_service_client::PaymentsServiceClient;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;
use tonic::transport::Channel;

const IN_FLIGHT: usize = 64;
const CONNECTIONS: usize = 2;
const WARM_UP: Duration = Duration::from_secs(1);
const WINDOW: Duration = Duration::from_secs(3);
const ROUNDS: usize = 2;
const SINGLE_WINDOW: Duration = Duration::from_secs(2);
/// The open loop's rate, as a share of the throughput the service sustained at 64 in flight:
/// busy, yet below saturation, where the latency added is the service's and not a queue's.
const PACED_SHARE: f64 = 0.5;
const PACED_WINDOW: Duration = Duration::from_secs(3);

pub const FIGURES: &[(&str, &str)] = &[
    ("c. CreatePayin: service CPU per create", "≤ 80 µs"),
    ("c. CreatePayin: Redis CPU per create", "≤ 40 µs"),
    ("c. CreatePayin: errors at 64 in flight", "0"),
    (
        "c. CreatePayin: p50 added over the sandbox direct, at half the sustained rate",
        "≤ 1 ms",
    ),
    (
        "c. CreatePayin: p99 added over the sandbox direct, at half the sustained rate",
        "≤ 5 ms",
    ),
];

/// CPU ticks of each measured process.
#[derive(Default, Clone, Copy)]
struct Cpu {
    service: u64,
    redis: u64,
    sandbox: u64,
    bench: u64,
}

impl Cpu {
    fn read(service: u32, redis: u32, sandbox: u32) -> Result<Self, String> {
        Ok(Self {
            service: sys::cpu_ticks(service)?,
            redis: sys::cpu_ticks(redis)?,
            sandbox: sys::cpu_ticks(sandbox)?,
            bench: sys::cpu_ticks(std::process::id())?,
        })
    }

    fn since(self, before: Self) -> Self {
        Self {
            service: self.service - before.service,
            redis: self.redis - before.redis,
            sandbox: self.sandbox - before.sandbox,
            bench: self.bench - before.bench,
        }
    }

    fn add(&mut self, other: Self) {
        self.service += other.service;
        self.redis += other.redis;
        self.sandbox += other.sandbox;
        self.bench += other.bench;
    }
}

/// A Redis, a sandbox and the service on them, fresh.
struct Rig {
    redis: Redis,
    sandbox: Sandbox,
    service: Service,
    channels: Vec<Channel>,
}

impl Rig {
    async fn start(dir: &RunDir, name: &str) -> Result<Self, String> {
        let redis = Redis::start(&dir.path, &format!("redis-{name}")).await?;
        let sandbox = Sandbox::start(&dir.path, &format!("sandbox-{name}"), "1h", None).await?;
        let service = Service::start(
            &dir.path,
            &format!("service-{name}"),
            Ports::free()?,
            &redis,
            &sandbox,
            &[],
        )
        .await?;
        let channels = connect(&service.grpc_url(), CONNECTIONS).await?;
        Ok(Self {
            redis,
            sandbox,
            service,
            channels,
        })
    }
}

pub async fn run(dir: &RunDir, ticks: ClockTicks, report: &mut Report) -> Result<(), String> {
    let section = "c: CreatePayin";
    let rig = Rig::start(dir, "create").await?;
    let (redis, sandbox, service, channels) =
        (&rig.redis, &rig.sandbox, &rig.service, &rig.channels);
    let bare = Service::start_bare_create(&dir.path, redis, sandbox).await?;
    let bare_channels = connect(&bare.grpc_url(), CONNECTIONS).await?;
    let ids = Arc::new(AtomicU64::new(0));

    through_service(channels, &ids, WARM_UP).await;
    through_service(&bare_channels, &ids, WARM_UP).await;
    // Windows of the service and of the bare create alternate, so that drift on the shared
    // machine hits both alike; Redis's command counts are the service's windows' only.
    let (mut served, mut floor) = (Outcome::default(), Outcome::default());
    let (mut cpu, mut floor_cpu) = (Cpu::default(), Cpu::default());
    let (redis_pid, sandbox_pid) = (redis.proc.pid(), sandbox.proc.pid());
    let mut commands = CommandStats::default();
    // One window of creates through `channels`, and the CPU `pid`, Redis and the sandbox
    // spent in it.
    let window = |pid: u32, channels: &[Channel]| {
        let (channels, ids) = (channels.to_vec(), ids.clone());
        async move {
            let before = Cpu::read(pid, redis_pid, sandbox_pid)?;
            let outcome = through_service(&channels, &ids, WINDOW).await;
            let spent = Cpu::read(pid, redis_pid, sandbox_pid)?.since(before);
            Ok::<_, String>((outcome, spent))
        }
    };
    for _ in 0..ROUNDS {
        let commands_before = CommandStats::read(&redis.url()).await?;
        let (outcome, spent) = window(service.proc.pid(), channels).await?;
        served.add(outcome);
        cpu.add(spent);
        commands.add(
            &CommandStats::read(&redis.url())
                .await?
                .since(&commands_before),
        );
        let (outcome, spent) = window(bare.proc.pid(), &bare_channels).await?;
        floor.add(outcome);
        floor_cpu.add(spent);
    }
    drop((bare_channels, bare, rig));

    // Latency on a fresh Redis, sandbox and service: the windows above leave some hundred
    // thousand payins in the sandbox, and growing its maps further stalled it for up to a few
    // hundred milliseconds (direct p99 of 32–216 ms after them, 2–10 ms on a fresh one).
    let rig = Rig::start(dir, "create-latency").await?;
    let (sandbox, channels) = (&rig.sandbox, &rig.channels);
    let http = reqwest::Client::builder()
        .tcp_nodelay(true)
        .timeout(load::CALL_TIMEOUT)
        .build()
        .map_err(|e| e.to_string())?;
    through_service(channels, &ids, WARM_UP).await;
    // The sandbox's own capacity is not measured: a closed loop on it alone would fill it
    // with hundreds of thousands of payins and slow everything after.
    direct(&http, &sandbox.base_url(), &ids, Load::InFlight(1), WARM_UP).await;
    // Busy but not saturated: callers arriving at a fixed rate, for the latency the service
    // adds. (At 64 in flight on two shared cores, the added latency is the queue's.)
    let rate = (served.throughput() * PACED_SHARE).round();
    let paced = Load::PerSecond(rate);
    let paced_straight = direct(&http, &sandbox.base_url(), &ids, paced, PACED_WINDOW).await;
    let paced_served = through_service_with(channels, &ids, paced, PACED_WINDOW).await;
    // Unloaded: one call at a time.
    let one = Load::InFlight(1);
    let single_straight = direct(&http, &sandbox.base_url(), &ids, one, SINGLE_WINDOW).await;
    let single_served = through_service_with(&channels[..1], &ids, one, SINGLE_WINDOW).await;
    for (what, outcome) in [
        (
            format!("{rate:.0} calls/s, through the service"),
            &paced_served,
        ),
        (
            format!("{rate:.0} calls/s, sandbox direct"),
            &paced_straight,
        ),
        (
            "one call at a time, through the service".into(),
            &single_served,
        ),
        (
            "one call at a time, sandbox direct".into(),
            &single_straight,
        ),
    ] {
        report.context(section, format!("{what}: {}", outcome.summary()));
    }

    let per_call =
        |t: u64, calls: u64| ticks.to_duration(t).as_secs_f64() * 1e6 / calls.max(1) as f64;
    let per_create = |t: u64| per_call(t, served.calls);
    let (service_us, redis_us) = (per_create(cpu.service), per_create(cpu.redis));
    let per_bare = |t: u64| per_call(t, floor.calls);
    let (bare_us, bare_redis_us) = (per_bare(floor_cpu.service), per_bare(floor_cpu.redis));
    report.context(
        section,
        format!(
            "through the service ({IN_FLIGHT} in flight, {CONNECTIONS} connections): {}",
            served.summary()
        ),
    );
    report.context(
        section,
        format!(
            "CPU per create while creating through the service: service {service_us:.0} µs, Redis {redis_us:.0} µs, sandbox {:.0} µs, bench client {:.0} µs (resolution: one clock tick = {:.2} µs per create)",
            per_create(cpu.sandbox),
            per_create(cpu.bench),
            per_create(1),
        ),
    );
    report.context(
        section,
        format!(
            "the bare create (the same gRPC call, two Redis script calls that do nothing, the same POST to the sandbox; none of the work), {IN_FLIGHT} in flight over {CONNECTIONS} connections, windows alternating with the service's: {}",
            floor.summary()
        ),
    );
    report.context(
        section,
        format!(
            "CPU per bare create: bare service {bare_us:.0} µs, Redis {bare_redis_us:.0} µs, sandbox {:.0} µs; the service spends {:.2}× the bare CPU, Redis {:.2}× the bare Redis CPU",
            per_bare(floor_cpu.sandbox),
            service_us / bare_us.max(1e-9),
            redis_us / bare_redis_us.max(1e-9),
        ),
    );
    report.context(
        section,
        format!(
            "Redis commands per create while creating through the service, from INFO commandstats (the time is Redis's inside each command, scripts included): {}",
            commands.per_operation(served.calls)
        ),
    );
    report.row(
        FIGURES[0].0,
        format!("{service_us:.0} µs (the same round trips alone: {bare_us:.0} µs)"),
        FIGURES[0].1,
        service_us <= 80.0,
    );
    report.row(
        FIGURES[1].0,
        format!("{redis_us:.0} µs (two script calls that do nothing: {bare_redis_us:.0} µs)"),
        FIGURES[1].1,
        redis_us <= 40.0,
    );
    report.row(
        FIGURES[2].0,
        format!(
            "{} ({})",
            served.error_count(),
            load::errors_text(&served.errors)
        ),
        FIGURES[2].1,
        served.error_count() == 0,
    );
    let paced_errors = paced_served.error_count() + paced_straight.error_count();
    for (i, q, limit_us) in [(3, 0.5, 1_000), (4, 0.99, 5_000)] {
        let through = paced_served.quantile_us(q);
        let straight_q = paced_straight.quantile_us(q);
        // The baseline slower than the service means the machine disturbed the run: a
        // negative figure would pass without measuring anything.
        let disturbed = straight_q > through;
        let added = through.saturating_sub(straight_q);
        let note = if disturbed {
            "; disturbed: the direct run was slower, not a measurement"
        } else {
            ""
        };
        report.row(
            FIGURES[i].0,
            format!(
                "{} ({} vs {} direct{note})",
                ms(added),
                ms(through),
                ms(straight_q)
            ),
            FIGURES[i].1,
            !disturbed && added <= limit_us && paced_errors == 0,
        );
    }
    Ok(())
}

async fn through_service(channels: &[Channel], ids: &Arc<AtomicU64>, window: Duration) -> Outcome {
    through_service_with(channels, ids, Load::InFlight(IN_FLIGHT), window).await
}

async fn through_service_with(
    channels: &[Channel],
    ids: &Arc<AtomicU64>,
    load: Load,
    window: Duration,
) -> Outcome {
    let clients: Arc<Vec<PaymentsServiceClient<Channel>>> = Arc::new(
        channels
            .iter()
            .cloned()
            .map(PaymentsServiceClient::new)
            .collect(),
    );
    load::drive(load, window, ids.clone(), move |n| {
        let mut client = clients[n as usize % clients.len()].clone();
        async move {
            client
                .create_payin(create_request(&format!("bench-create-{n}"), WAITING_MSISDN))
                .await
                .map(|_| ())
                .map_err(|s| load::code_name(&s))
        }
    })
    .await
}

/// `POST /v1/payin/sessions` as the service sends it (Basic auth, a UUID idempotency key).
async fn direct(
    http: &reqwest::Client,
    base_url: &str,
    ids: &Arc<AtomicU64>,
    load: Load,
    window: Duration,
) -> Outcome {
    let http = http.clone();
    let url = format!("{base_url}/v1/payin/sessions");
    load::drive(load, window, ids.clone(), move |n| {
        let body = serde_json::json!({
            "reference": format!("bench-direct-{n}"),
            "amount": 300,
            "msisdn": WAITING_MSISDN,
            "customerName": "Awa Kone",
            "country": "CI",
        });
        let request = http
            .post(&url)
            .basic_auth(API_KEY, Some(API_CLIENT))
            .header("accept", "application/json")
            .header("x-idempotency-key", uuid::Uuid::new_v4().to_string())
            .json(&body);
        async move {
            let response = request
                .send()
                .await
                .map_err(|e| format!("transport: {}", e.without_url()))?;
            let status = response.status();
            // The whole body is read, as the service reads it.
            response
                .bytes()
                .await
                .map_err(|e| format!("body: {}", e.without_url()))?;
            if status.is_success() {
                Ok(())
            } else {
                Err(format!("HTTP {}", status.as_u16()))
            }
        }
    })
    .await
}
