//! Figure d: 10,000 concurrent StreamPayinUpdates on one replica: the time until every
//! SNAPSHOT arrived, and the replica's resident memory while they are all open.

use super::calls::{WAITING_MSISDN, create_many, open_stream};
use super::load::connect;
use super::procs::{Ports, Redis, RunDir, Sandbox, Service};
use super::report::Report;
use super::sys;
use crate::proto::payments_service_client::PaymentsServiceClient;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

const STREAMS: usize = 10_000;
const CONNECTIONS: usize = 200;
/// The longest the bench waits for the snapshots (the target is 5 s).
const WAIT: Duration = Duration::from_secs(30);

pub const FIGURES: &[(&str, &str)] = &[
    ("d. 10,000 streams: service RSS with them open", "≤ 150 MB"),
    ("d. 10,000 streams: all snapshots received", "≤ 5 s"),
];

pub async fn run(dir: &RunDir, report: &mut Report) -> Result<(), String> {
    let section = "d: 10,000 streams";
    if let Some(limit) = sys::open_files_limit() {
        // One socket per connection on each side, plus Redis and the sandbox.
        if limit < (CONNECTIONS as u64) * 2 + 256 {
            return Err(format!(
                "the open-files limit is {limit}: raise it (ulimit -n 4096)"
            ));
        }
    }
    let redis = Redis::start(&dir.path, "redis-streams").await?;
    let sandbox = Sandbox::start(&dir.path, "sandbox-streams", "1h", None).await?;
    let service = Service::start(
        &dir.path,
        "service-streams",
        Ports::free()?,
        &redis,
        &sandbox,
        &[],
    )
    .await?;
    let pid = service.proc.pid();

    let setup = connect(&service.grpc_url(), 2).await?;
    let started = Instant::now();
    create_many(
        &setup,
        "bench-stream",
        STREAMS,
        WAITING_MSISDN,
        64,
        Duration::from_secs(60),
    )
    .await?;
    report.context(
        section,
        format!(
            "{STREAMS} payins created in {:.1} s (64 in flight)",
            started.elapsed().as_secs_f64()
        ),
    );
    let rss_before = sys::rss_bytes(pid)?;

    let channels = connect(&service.grpc_url(), CONNECTIONS).await?;
    let (stop, stopped) = watch::channel(false);
    let (arrived, mut arrivals) = mpsc::unbounded_channel::<Result<Instant, String>>();
    let refused = Arc::new(AtomicU64::new(0));
    let opened = Instant::now();
    let mut tasks = Vec::with_capacity(STREAMS);
    for i in 0..STREAMS {
        let mut client = PaymentsServiceClient::new(channels[i % CONNECTIONS].clone());
        let arrived = arrived.clone();
        let mut stopped = stopped.clone();
        let refused = refused.clone();
        tasks.push(tokio::spawn(async move {
            let reference = format!("bench-stream-{i}");
            let stream = match open_stream(&mut client, &reference, &refused).await {
                Ok((stream, _snapshot)) => {
                    let _ = arrived.send(Ok(Instant::now()));
                    stream
                }
                Err(kind) => {
                    let _ = arrived.send(Err(kind));
                    return;
                }
            };
            // Held open (unread) until the bench is done measuring.
            let _ = stopped.wait_for(|s| *s).await;
            drop(stream);
        }));
    }
    drop(arrived);

    let mut last = opened;
    let mut received = 0usize;
    let mut failures: std::collections::BTreeMap<String, usize> = Default::default();
    let deadline = tokio::time::Instant::now() + WAIT;
    while received + failures.values().sum::<usize>() < STREAMS {
        match tokio::time::timeout_at(deadline, arrivals.recv()).await {
            Ok(Some(Ok(at))) => {
                received += 1;
                last = last.max(at);
            }
            Ok(Some(Err(kind))) => *failures.entry(kind).or_default() += 1,
            Ok(None) | Err(_) => break,
        }
    }
    let all_in = last.duration_since(opened);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss = sys::rss_bytes(pid)?;
    let _ = stop.send(true);
    for task in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }

    let mb = |b: u64| b as f64 / 1_000_000.0;
    report.context(
        section,
        format!(
            "service RSS {:.0} MB before the streams, {:.0} MB with {received} open over {CONNECTIONS} connections ({:.1} kB per stream)",
            mb(rss_before),
            mb(rss),
            (rss.saturating_sub(rss_before)) as f64 / 1000.0 / received.max(1) as f64
        ),
    );
    if !failures.is_empty() {
        report.context(
            section,
            format!("streams that failed before their snapshot: {failures:?}"),
        );
    }
    let refusals = refused.load(Ordering::Relaxed);
    report.context(
        section,
        format!("stream opens refused with RESOURCE_EXHAUSTED and retried with backoff (25 ms doubling to 1 s, jittered): {refusals}"),
    );
    let complete = received == STREAMS;
    report.row(
        FIGURES[0].0,
        format!("{:.0} MB", mb(rss)),
        FIGURES[0].1,
        complete && mb(rss) <= 150.0,
    );
    let took = if complete {
        format!(
            "{:.2} s ({refusals} opens refused and retried)",
            all_in.as_secs_f64()
        )
    } else {
        format!("{received} of {STREAMS} within {} s", WAIT.as_secs())
    };
    report.row(
        FIGURES[1].0,
        took,
        FIGURES[1].1,
        complete && all_in <= Duration::from_secs(5),
    );
    Ok(())
}
