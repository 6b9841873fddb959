//! Figures e and f on two replicas of one Redis: webhook → stream delivery across replicas,
//! and the provider GETs that watched payins cost per poll interval.

use super::calls::{
    self, GET_PAYIN_ROUTE, WAITING_MSISDN, create_many, open_stream, payment_token,
};
use super::load::{connect, ms, new_histogram};
use super::procs::{Ports, Redis, RunDir, Sandbox, Service};
use super::report::Report;
use crate::proto::PayinUpdate;
use crate::proto::payments_service_client::PaymentsServiceClient;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tonic::transport::Channel;

const PAYINS: usize = 1_000;
const CONNECTIONS_PER_REPLICA: usize = 5;
const POLL_INTERVAL: Duration = Duration::from_secs(5);
const INTERVALS: u32 = 3;
const ACCEPTS_PER_SECOND: u64 = 200;
/// The longest the bench waits for snapshots, and for deliveries after the last accept.
const WAIT: Duration = Duration::from_secs(20);

pub const FIGURES: &[(&str, &str)] = &[
    (
        "e. webhook → stream on the other replica, 1,000 payins: p99",
        "≤ 50 ms",
    ),
    (
        "f. provider GETs per watched payin per poll interval",
        "≤ 1",
    ),
];

/// Streams opened on each payin of `references`, over `channels` in turn. Each stream reports
/// its SNAPSHOT on `ready`, then the time its next message arrived on `changed`, and is held
/// until `stop`.
struct Watching {
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Opens refused with RESOURCE_EXHAUSTED (and retried).
    refused: Arc<AtomicU64>,
}

impl Watching {
    fn open(
        channels: &[Channel],
        references: &[String],
        ready: &mpsc::UnboundedSender<Result<(), String>>,
        changed: Option<&mpsc::UnboundedSender<(usize, Instant, PayinUpdate)>>,
    ) -> Self {
        let (stop, stopped) = watch::channel(false);
        let refused = Arc::new(AtomicU64::new(0));
        let tasks = references
            .iter()
            .enumerate()
            .map(|(i, reference)| {
                let mut client = PaymentsServiceClient::new(channels[i % channels.len()].clone());
                let reference = reference.clone();
                let (ready, changed, mut stopped) =
                    (ready.clone(), changed.cloned(), stopped.clone());
                let refused = refused.clone();
                tokio::spawn(async move {
                    let mut stream = match open_stream(&mut client, &reference, &refused).await {
                        Ok((stream, _snapshot)) => {
                            let _ = ready.send(Ok(()));
                            stream
                        }
                        Err(e) => {
                            let _ = ready.send(Err(e));
                            return;
                        }
                    };
                    loop {
                        tokio::select! {
                            _ = stopped.wait_for(|s| *s) => return,
                            message = stream.message() => {
                                let at = Instant::now();
                                match (message, &changed) {
                                    (Ok(Some(update)), Some(changed)) => {
                                        let _ = changed.send((i, at, update));
                                    }
                                    (Ok(Some(_)), None) => {}
                                    _ => return,
                                }
                            }
                        }
                    }
                })
            })
            .collect();
        Self {
            stop,
            tasks,
            refused,
        }
    }

    fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    async fn close(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}

/// Waits for `n` snapshots; an error names the first failure.
async fn snapshots(
    ready: &mut mpsc::UnboundedReceiver<Result<(), String>>,
    n: usize,
) -> Result<Duration, String> {
    let began = Instant::now();
    let deadline = tokio::time::Instant::now() + WAIT;
    for received in 0..n {
        match tokio::time::timeout_at(deadline, ready.recv()).await {
            Ok(Some(Ok(()))) => {}
            Ok(Some(Err(e))) => return Err(format!("a stream failed before its snapshot: {e}")),
            _ => {
                return Err(format!(
                    "{received} of {n} snapshots within {} s",
                    WAIT.as_secs()
                ));
            }
        }
    }
    Ok(began.elapsed())
}

pub async fn run(dir: &RunDir, report: &mut Report) -> Result<(), String> {
    let redis = Redis::start(&dir.path, "redis-watch").await?;
    let (ports_a, ports_b) = (Ports::free()?, Ports::free()?);
    // The sandbox's webhooks (signed) all go to replica A.
    let sandbox = Sandbox::start(
        &dir.path,
        "sandbox-watch",
        "1h",
        Some(&ports_a.webhook_url()),
    )
    .await?;
    let interval = [("PAYMENTS_POLL_INTERVAL", "5s")];
    let a = Service::start(&dir.path, "replica-a", ports_a, &redis, &sandbox, &interval).await?;
    let b = Service::start(&dir.path, "replica-b", ports_b, &redis, &sandbox, &interval).await?;
    let on_a = connect(&a.grpc_url(), CONNECTIONS_PER_REPLICA).await?;
    let on_b = connect(&b.grpc_url(), CONNECTIONS_PER_REPLICA).await?;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    polling(&on_a, &on_b, &http, &sandbox, report).await?;
    delivery(&on_a, &on_b, &http, &sandbox, report).await
}

/// f: 1,000 payins, half watched on each replica, nothing changing, for three intervals.
async fn polling(
    on_a: &[Channel],
    on_b: &[Channel],
    http: &reqwest::Client,
    sandbox: &Sandbox,
    report: &mut Report,
) -> Result<(), String> {
    let section = "f: polling";
    create_many(
        on_a,
        "bench-poll",
        PAYINS,
        WAITING_MSISDN,
        64,
        Duration::from_secs(30),
    )
    .await?;
    let references: Vec<String> = (0..PAYINS).map(|i| format!("bench-poll-{i}")).collect();
    let (ready, mut readies) = mpsc::unbounded_channel();
    let (half_a, half_b) = references.split_at(PAYINS / 2);
    let watching_a = Watching::open(on_a, half_a, &ready, None);
    let watching_b = Watching::open(on_b, half_b, &ready, None);
    snapshots(&mut readies, PAYINS).await?;
    let before = calls::sandbox_requests(http, &sandbox.base_url(), GET_PAYIN_ROUTE).await?;
    let window = POLL_INTERVAL * INTERVALS;
    tokio::time::sleep(window).await;
    let after = calls::sandbox_requests(http, &sandbox.base_url(), GET_PAYIN_ROUTE).await?;
    let refused = watching_a.refused() + watching_b.refused();
    report.context(
        section,
        format!("stream opens refused with RESOURCE_EXHAUSTED and retried: {refused}"),
    );
    watching_a.close().await;
    watching_b.close().await;
    let gets = after - before;
    let per = gets as f64 / (PAYINS as f64 * f64::from(INTERVALS));
    report.context(
        section,
        format!("{gets} GET /v1/payin/{{reference}} in {} s ({INTERVALS} intervals of 5 s) for {PAYINS} watched payins, {} on each replica", window.as_secs(), PAYINS / 2),
    );
    report.row(
        FIGURES[1].0,
        format!("{per:.2} ({gets} GETs)"),
        FIGURES[1].1,
        per <= 1.0,
    );
    Ok(())
}

/// e: 1,000 other payins watched on B, accepted on the sandbox's page at a steady rate; the
/// sandbox's webhooks reach A; the change must reach B's streams.
async fn delivery(
    on_a: &[Channel],
    on_b: &[Channel],
    http: &reqwest::Client,
    sandbox: &Sandbox,
    report: &mut Report,
) -> Result<(), String> {
    let section = "e: webhook → stream";
    let payins = create_many(
        on_a,
        "bench-hook",
        PAYINS,
        WAITING_MSISDN,
        64,
        Duration::from_secs(30),
    )
    .await?;
    let tokens: Vec<String> = payins
        .iter()
        .map(|p| {
            payment_token(&p.payment_url)
                .map(str::to_owned)
                .ok_or("a payin without a payment URL")
        })
        .collect::<Result<_, _>>()?;
    let references: Vec<String> = payins.iter().map(|p| p.reference.clone()).collect();
    let (ready, mut readies) = mpsc::unbounded_channel();
    let (changed, mut changes) = mpsc::unbounded_channel();
    let watching = Watching::open(on_b, &references, &ready, Some(&changed));
    snapshots(&mut readies, PAYINS).await?;

    // The accepts, paced; each one's time is taken just before its request leaves.
    let sent: Arc<Vec<std::sync::OnceLock<Instant>>> =
        Arc::new((0..PAYINS).map(|_| Default::default()).collect());
    let base = sandbox.base_url();
    let pacer = {
        let (sent, http) = (sent.clone(), http.clone());
        tokio::spawn(async move {
            let mut tick =
                tokio::time::interval(Duration::from_micros(1_000_000 / ACCEPTS_PER_SECOND));
            let mut requests = Vec::with_capacity(tokens.len());
            for (i, token) in tokens.into_iter().enumerate() {
                tick.tick().await;
                let request = http.post(format!("{base}/pay/{token}/accept"));
                let sent = sent.clone();
                requests.push(tokio::spawn(async move {
                    let _ = sent[i].set(Instant::now());
                    request
                        .send()
                        .await
                        .map(|r| r.status().as_u16())
                        .map_err(|e| e.without_url().to_string())
                }));
            }
            let mut failed = 0usize;
            for request in requests {
                if !matches!(request.await, Ok(Ok(status)) if status < 400) {
                    failed += 1;
                }
            }
            failed
        })
    };
    let mut latency = new_histogram();
    let mut delivered = vec![false; PAYINS];
    let mut count = 0usize;
    let deadline = tokio::time::Instant::now()
        + Duration::from_secs(PAYINS as u64 / ACCEPTS_PER_SECOND)
        + WAIT;
    while count < PAYINS {
        let Ok(Some((i, at, _update))) = tokio::time::timeout_at(deadline, changes.recv()).await
        else {
            break;
        };
        let Some(sent_at) = sent[i].get() else {
            continue;
        };
        if !delivered[i] {
            delivered[i] = true;
            count += 1;
            let us = u64::try_from(at.saturating_duration_since(*sent_at).as_micros())
                .unwrap_or(u64::MAX);
            latency.saturating_record(us.max(1));
        }
    }
    let failed_accepts = tokio::time::timeout(WAIT, pacer)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or(PAYINS);
    report.context(
        section,
        format!(
            "stream opens on replica B refused with RESOURCE_EXHAUSTED and retried: {}",
            watching.refused()
        ),
    );
    watching.close().await;

    report.context(
        section,
        format!(
            "{count} of {PAYINS} changes delivered on replica B ({ACCEPTS_PER_SECOND} accepts/s on the sandbox, webhooks to replica A): p50 {}, p90 {}, p99 {}, max {}; accepts that failed: {failed_accepts}",
            ms(latency.value_at_quantile(0.5)),
            ms(latency.value_at_quantile(0.9)),
            ms(latency.value_at_quantile(0.99)),
            ms(latency.max()),
        ),
    );
    let p99 = latency.value_at_quantile(0.99);
    let measured = if count == PAYINS {
        ms(p99)
    } else {
        format!("{} ({count} of {PAYINS} delivered)", ms(p99))
    };
    report.row(
        FIGURES[0].0,
        measured,
        FIGURES[0].1,
        count == PAYINS && p99 <= 50_000,
    );
    Ok(())
}
