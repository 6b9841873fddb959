//! The load generator: a closed loop of N calls in flight, or an open loop at a fixed rate,
//! for a bounded time, each call's latency into an HDR histogram (µs), failures counted by
//! kind; and gRPC connections.

use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tonic::transport::{Channel, Endpoint};

/// No call may take longer than this; beyond it counts as an error and the loop goes on.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// What one or more measured windows gave.
pub struct Outcome {
    /// Calls that succeeded within the window.
    pub calls: u64,
    /// Failed calls by kind (a gRPC code name, an HTTP status, "timeout").
    pub errors: BTreeMap<String, u64>,
    /// Latency of the successful calls, in µs.
    pub latency: Histogram<u64>,
    /// The summed length of the windows.
    pub elapsed: Duration,
}

impl Default for Outcome {
    fn default() -> Self {
        Self {
            calls: 0,
            errors: BTreeMap::new(),
            latency: new_histogram(),
            elapsed: Duration::ZERO,
        }
    }
}

pub fn new_histogram() -> Histogram<u64> {
    // 1 µs to 100 s, three significant digits.
    Histogram::new_with_bounds(1, 100_000_000, 3).expect("valid histogram bounds")
}

impl Outcome {
    pub fn throughput(&self) -> f64 {
        if self.elapsed.is_zero() {
            return 0.0;
        }
        self.calls as f64 / self.elapsed.as_secs_f64()
    }

    /// The latency at quantile `q` (0.5, 0.99), in µs.
    pub fn quantile_us(&self, q: f64) -> u64 {
        self.latency.value_at_quantile(q)
    }

    /// Counts one call: its latency if it succeeded, else its kind of failure (a call cut at
    /// `CALL_TIMEOUT` is a "timeout").
    pub fn record<E>(&mut self, result: Result<Result<(), String>, E>, latency: Duration) {
        match result {
            Ok(Ok(())) => {
                self.calls += 1;
                let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
                self.latency.saturating_record(us.max(1));
            }
            Ok(Err(kind)) => *self.errors.entry(kind).or_default() += 1,
            Err(_) => *self.errors.entry("timeout".into()).or_default() += 1,
        }
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    pub fn add(&mut self, other: Outcome) {
        self.calls += other.calls;
        self.elapsed += other.elapsed;
        for (kind, n) in other.errors {
            *self.errors.entry(kind).or_default() += n;
        }
        self.latency
            .add(&other.latency)
            .expect("histograms of the same bounds add up");
    }

    /// `1234 calls/s, p50 0.21 ms, p99 1.30 ms, errors: none`.
    pub fn summary(&self) -> String {
        format!(
            "{:.0} calls/s ({} calls in {:.1} s), p50 {}, p99 {}, max {}, errors: {}",
            self.throughput(),
            self.calls,
            self.elapsed.as_secs_f64(),
            ms(self.quantile_us(0.5)),
            ms(self.quantile_us(0.99)),
            ms(self.latency.max()),
            errors_text(&self.errors),
        )
    }
}

pub fn errors_text(errors: &BTreeMap<String, u64>) -> String {
    if errors.values().all(|&n| n == 0) {
        return "none".into();
    }
    errors
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// µs as milliseconds with two decimals.
pub fn ms(us: u64) -> String {
    format!("{:.2} ms", us as f64 / 1000.0)
}

/// How calls are offered: a fixed number in flight, back to back (closed loop), or a fixed
/// number per second whatever the answers do (open loop).
#[derive(Clone, Copy)]
pub enum Load {
    InFlight(usize),
    PerSecond(f64),
}

/// Offers `call` as `load` says for `duration`.
pub async fn drive<F, Fut>(
    load: Load,
    duration: Duration,
    next_id: Arc<AtomicU64>,
    call: F,
) -> Outcome
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    match load {
        Load::InFlight(n) => closed_loop(n, duration, next_id, call).await,
        Load::PerSecond(rate) => open_loop(rate, duration, next_id, call).await,
    }
}

/// `in_flight` workers call `call(n)` (n unique over the loop) back to back until `duration`
/// has passed. Only calls that end within the window count; each call is cut at
/// `CALL_TIMEOUT`, so the loop ends by `duration + CALL_TIMEOUT`.
pub async fn closed_loop<F, Fut>(
    in_flight: usize,
    duration: Duration,
    next_id: Arc<AtomicU64>,
    call: F,
) -> Outcome
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let call = Arc::new(call);
    let started = Instant::now();
    let deadline = started + duration;
    let mut workers = Vec::with_capacity(in_flight);
    for _ in 0..in_flight {
        let call = call.clone();
        let next_id = next_id.clone();
        workers.push(tokio::spawn(async move {
            let mut outcome = Outcome::default();
            while Instant::now() < deadline {
                let id = next_id.fetch_add(1, Ordering::Relaxed);
                let begun = Instant::now();
                let result = tokio::time::timeout(CALL_TIMEOUT, call(id)).await;
                let ended = Instant::now();
                if ended > deadline {
                    break;
                }
                outcome.record(result, ended.duration_since(begun));
            }
            outcome
        }));
    }
    let mut total = Outcome::default();
    for worker in workers {
        if let Ok(outcome) = worker.await {
            total.add(outcome);
        }
    }
    total.elapsed = duration;
    total
}

/// Calls `call(n)` at a fixed `rate` per second for `duration`, whether or not earlier calls
/// have ended (an open loop, as independent callers arrive): a slow service cannot slow the
/// callers down and hide its queue. The timer releases calls in bursts of its 1 ms tick, so
/// each latency is counted from when its call really began. At most `MAX_OUTSTANDING` calls run at once; a call due beyond that counts as "backlog".
/// Ends by `duration + CALL_TIMEOUT`.
pub async fn open_loop<F, Fut>(
    rate: f64,
    duration: Duration,
    next_id: Arc<AtomicU64>,
    call: F,
) -> Outcome
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    const MAX_OUTSTANDING: usize = 1024;
    let call = Arc::new(call);
    let interval = Duration::from_secs_f64(1.0 / rate.max(1.0));
    let outstanding = Arc::new(tokio::sync::Semaphore::new(MAX_OUTSTANDING));
    let started = tokio::time::Instant::now();
    let mut outcome = Outcome::default();
    let mut calls = tokio::task::JoinSet::new();
    for i in 0u32.. {
        let due = started + interval * i;
        if due >= started + duration {
            break;
        }
        tokio::time::sleep_until(due).await;
        let Ok(permit) = outstanding.clone().try_acquire_owned() else {
            *outcome.errors.entry("backlog".into()).or_default() += 1;
            continue;
        };
        let (call, id) = (call.clone(), next_id.fetch_add(1, Ordering::Relaxed));
        calls.spawn(async move {
            let begun = Instant::now();
            let result = tokio::time::timeout(CALL_TIMEOUT, call(id)).await;
            drop(permit);
            (result, begun.elapsed())
        });
    }
    while let Some(ended) = calls.join_next().await {
        match ended {
            Ok((result, latency)) => outcome.record(result, latency),
            Err(_) => *outcome.errors.entry("panic".into()).or_default() += 1,
        }
    }
    outcome.elapsed = duration;
    outcome
}

/// `n` separate HTTP/2 connections to `url` (a tonic `Channel` is one connection).
pub async fn connect(url: &str, n: usize) -> Result<Vec<Channel>, String> {
    let mut channels = Vec::with_capacity(n);
    for _ in 0..n {
        let channel = Endpoint::from_shared(url.to_owned())
            .map_err(|e| format!("{url}: {e}"))?
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .map_err(|e| format!("cannot connect to {url}: {e}"))?;
        channels.push(channel);
    }
    Ok(channels)
}

/// The name of a gRPC code, as counted among errors.
pub fn code_name(status: &tonic::Status) -> String {
    format!("{:?}", status.code())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_add_up() {
        let mut a = Outcome {
            calls: 10,
            elapsed: Duration::from_secs(2),
            ..Outcome::default()
        };
        a.latency.record(100).unwrap();
        let mut b = Outcome {
            calls: 30,
            elapsed: Duration::from_secs(2),
            ..Outcome::default()
        };
        b.latency.record(300).unwrap();
        b.errors.insert("Unavailable".into(), 2);
        a.add(b);
        assert_eq!(a.calls, 40);
        assert!((a.throughput() - 10.0).abs() < 1e-9);
        assert_eq!(a.error_count(), 2);
        assert_eq!(a.latency.len(), 2);
        assert_eq!(errors_text(&a.errors), "Unavailable 2");
    }
}
