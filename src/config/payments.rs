//! PAYMENTS_* durations: the payments logic's timings, and the shutdown grace.

use super::ServeArgs;
use super::parse::parse_duration;
use crate::payments::PaymentsSettings;
use std::time::Duration;

const MIN_POLL_INTERVAL: Duration = Duration::from_secs(5);
/// Unwatched non-terminal payins are first reconciled this long after they were saved.
const RECONCILE_AFTER: Duration = Duration::from_secs(30);
/// How long a running attempt holds its idempotency record without renewing it: an attempt
/// whose replica died is taken over after this (docs/decisions.md).
const ATTEMPT_LEASE: Duration = Duration::from_secs(10);
const MIN_UPSTREAM_TIMEOUT: Duration = Duration::from_millis(100);
const MAX_UPSTREAM_TIMEOUT: Duration = Duration::from_secs(30);

/// PAYMENTS_UPSTREAM_TIMEOUT alone: the request timeout (limits) and Novasend's client depend
/// on it.
pub(super) fn upstream_timeout(args: &ServeArgs) -> Result<Duration, String> {
    parse_duration(
        &args.upstream_timeout,
        MIN_UPSTREAM_TIMEOUT,
        MAX_UPSTREAM_TIMEOUT,
    )
}

/// The payments settings, and the shutdown grace.
pub(super) fn read_payments(args: &ServeArgs) -> Result<(PaymentsSettings, Duration), Vec<String>> {
    let mut errors = Vec::new();
    let mut durations = [
        (
            "PAYMENTS_POLL_INTERVAL",
            &args.poll_interval,
            MIN_POLL_INTERVAL,
            Duration::from_secs(3600),
            Duration::ZERO,
        ),
        (
            "PAYMENTS_SHUTDOWN_GRACE",
            &args.shutdown_grace,
            Duration::ZERO,
            Duration::from_secs(3600),
            Duration::ZERO,
        ),
        (
            "PAYMENTS_UPSTREAM_TIMEOUT",
            &args.upstream_timeout,
            MIN_UPSTREAM_TIMEOUT,
            MAX_UPSTREAM_TIMEOUT,
            Duration::ZERO,
        ),
        (
            "PAYMENTS_IDEMPOTENCY_TTL",
            &args.idempotency_ttl,
            Duration::from_secs(60),
            Duration::from_secs(90 * 86_400),
            Duration::ZERO,
        ),
        (
            "PAYMENTS_IDEMPOTENCY_WAIT",
            &args.idempotency_wait,
            Duration::from_millis(100),
            Duration::from_secs(60),
            Duration::ZERO,
        ),
        (
            "PAYMENTS_PAYIN_TTL",
            &args.payin_ttl,
            Duration::from_secs(3600),
            Duration::from_secs(400 * 86_400),
            Duration::ZERO,
        ),
    ];
    for (variable, raw, min, max, parsed) in durations.iter_mut() {
        match parse_duration(raw, *min, *max) {
            Ok(d) => *parsed = d,
            Err(e) => errors.push(format!("{variable}: {e}")),
        }
    }
    let [
        poll_interval,
        shutdown_grace,
        upstream_timeout,
        idempotency_ttl,
        idempotency_wait,
        payin_ttl,
    ] = durations.map(|d| d.4);
    if !errors.is_empty() {
        return Err(errors);
    }
    let payments = PaymentsSettings {
        reconcile_after: RECONCILE_AFTER,
        attempt_lease: ATTEMPT_LEASE,
        poll_interval,
        idempotency_ttl,
        idempotency_wait,
        upstream_timeout,
        payin_ttl,
    };
    Ok((payments, shutdown_grace))
}
