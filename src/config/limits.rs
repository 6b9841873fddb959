//! PAYMENTS_MAX_*, PAYMENTS_REQUEST_TIMEOUT and PAYMENTS_KEEPALIVE_*: overload protection.

use super::ServeArgs;
use super::parse::parse_duration;
use std::time::Duration;

/// Protection against overload: everything is bounded, nothing queues without limit.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_concurrent_per_connection: usize,
    pub max_in_flight: usize,
    pub request_timeout: Duration,
    pub max_streams: usize,
    pub max_message_bytes: usize,
    pub keepalive_interval: Duration,
    pub keepalive_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_concurrent_per_connection: 1024,
            max_in_flight: 512,
            request_timeout: Duration::from_secs(60),
            max_streams: 10_000,
            max_message_bytes: 64 * 1024,
            keepalive_interval: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(10),
        }
    }
}

pub(super) fn read_limits(
    args: &ServeArgs,
    upstream_timeout: Duration,
) -> Result<Limits, Vec<String>> {
    let mut errors = Vec::new();
    let mut count = |variable: &str, raw: &str, max: usize| {
        raw.trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                errors.push(format!(
                    "{variable}: `{raw}` is not a whole number in 1..={max}"
                ))
            })
            .unwrap_or(1)
    };
    let max_concurrent_per_connection = count(
        "PAYMENTS_MAX_CONCURRENT_PER_CONNECTION",
        &args.max_concurrent_per_connection,
        10_000,
    );
    let max_in_flight = count("PAYMENTS_MAX_IN_FLIGHT", &args.max_in_flight, 1_000_000);
    let max_streams = count("PAYMENTS_MAX_STREAMS", &args.max_streams, 1_000_000);
    let max_message_bytes = count(
        "PAYMENTS_MAX_MESSAGE_BYTES",
        &args.max_message_bytes,
        16 * 1024 * 1024,
    );
    let mut duration = |variable: &str, raw: &str, min: Duration, max: Duration| {
        parse_duration(raw, min, max)
            .map_err(|e| errors.push(format!("{variable}: {e}")))
            .unwrap_or(min)
    };
    // A call must outlive its upstream call and the reconciliation that may follow.
    let request_timeout = duration(
        "PAYMENTS_REQUEST_TIMEOUT",
        &args.request_timeout,
        upstream_timeout * 2,
        Duration::from_secs(600),
    );
    let keepalive_interval = duration(
        "PAYMENTS_KEEPALIVE_INTERVAL",
        &args.keepalive_interval,
        Duration::from_secs(1),
        Duration::from_secs(3600),
    );
    let keepalive_timeout = duration(
        "PAYMENTS_KEEPALIVE_TIMEOUT",
        &args.keepalive_timeout,
        Duration::from_secs(1),
        Duration::from_secs(600),
    );
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Limits {
        max_concurrent_per_connection,
        max_in_flight,
        request_timeout,
        max_streams,
        max_message_bytes,
        keepalive_interval,
        keepalive_timeout,
    })
}
