//! Advances non-terminal payins that nobody watches, so the cache converges and GetPayin
//! stays true. Each replica takes a few due payins per second from the store's schedule.

use crate::domain::{Language, ObservationSource, Payin};
use crate::payments::Payments;
use crate::store::PollLease;
use crate::telemetry::metrics::POLLS;
use chrono::Utc;
use std::time::Duration;
use tokio::sync::watch;

/// Payins refreshed per tick and replica: the bound on the reconciler's upstream rate.
const BATCH: usize = 5;
const TICK: Duration = Duration::from_secs(1);
/// How long a claimed payin is hidden from other replicas while this one refreshes it.
const HOLD: Duration = Duration::from_secs(60);
const LONGEST_PAUSE: Duration = Duration::from_secs(3600);

/// Runs until `stop` turns true.
pub async fn run(payments: Payments, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = stop.wait_for(|stop| *stop) => return,
            () = tokio::time::sleep(TICK) => {}
        }
        let due = match payments
            .store()
            .claim_due_reconciliations(BATCH, HOLD)
            .await
        {
            Ok(due) => due,
            Err(e) => {
                tracing::debug!(error = %e, "reconciler cannot reach the store");
                continue;
            }
        };
        for reference in due {
            reconcile(&payments, &reference).await;
        }
    }
}

async fn reconcile(payments: &Payments, reference: &str) {
    let interval = payments.settings().poll_interval;
    let store = payments.store();
    // A payin whose cache entry expired is forgotten, not read back into the cache.
    if let Ok(None) = store.load_payin(reference).await {
        if let Err(e) = store.unschedule_reconciliation(reference).await {
            tracing::debug!(reference, error = %e, "cannot unschedule an expired payin");
        }
        return;
    }
    // The poll lease is shared with stream pollers: a watched payin is not read twice.
    let next = match store.try_poll_lease(reference, interval).await {
        Ok(PollLease::HeldFor(_)) => interval,
        Ok(PollLease::Taken) => match counted(
            payments
                .refresh(reference, Language::En, ObservationSource::Poll)
                .await,
        ) {
            Ok(Some(payin)) if payin.status.is_terminal() => return,
            Ok(Some(payin)) => pause_for(&payin, interval.max(payments.settings().reconcile_after)),
            Ok(None) => LONGEST_PAUSE,
            Err(e) => {
                tracing::warn!(reference, error = %e, "reconciliation failed");
                interval * 4
            }
        },
        Err(_) => return,
    };
    if let Err(e) = store.schedule_reconciliation(reference, next).await {
        tracing::debug!(reference, error = %e, "cannot schedule the next reconciliation");
    }
}

fn counted<T, E>(result: Result<T, E>) -> Result<T, E> {
    let outcome = if result.is_ok() { "ok" } else { "error" };
    metrics::counter!(POLLS, "source" => "reconciler", "result" => outcome).increment(1);
    result
}

/// Young payins are read often, old ones rarely: a tenth of their age, within bounds.
fn pause_for(payin: &Payin, shortest: Duration) -> Duration {
    let age = Utc::now()
        .signed_duration_since(payin.created_at)
        .to_std()
        .unwrap_or_default();
    (age / 10).clamp(shortest.min(LONGEST_PAUSE), LONGEST_PAUSE)
}
