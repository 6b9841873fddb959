//! Runs an operation under its idempotency record (contract §3), top to bottom:
//! open the record (or replay, refuse, wait) → do the work while the record stays ours →
//! keep the outcome, and answer only what was kept.

use super::error::{self, Disposition};
use crate::domain::Language;
use crate::payments::{PaymentsError, PaymentsSettings};
use crate::store::attempt::Attempt;
use crate::store::{Begin, IdempotencyScope, ReferenceClaim, Store, StoredOutcome};
use crate::telemetry::metrics::IDEMPOTENCY;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tonic::{Code, Status};

const WAIT_POLL_START: Duration = Duration::from_millis(20);
const WAIT_POLL_MAX: Duration = Duration::from_millis(250);

/// One call under an idempotency record.
pub struct IdempotentCall {
    /// `create` or `refund`: records of different operations never meet.
    pub operation: &'static str,
    /// The caller's idempotency key.
    pub key: String,
    /// The canonical request's fingerprint.
    pub fingerprint: String,
    /// A create's merchant reference, claimed for the key together with the record, and
    /// the provider it is routed to, kept with the record.
    pub claims_reference: Option<(String, &'static str)>,
}

/// Opens (or replays, or joins) the record of `call`, runs `work` if this call owns it, and
/// keeps its outcome. `work` receives the attempt: whether an earlier one ended without a
/// known outcome, what the reference claim found, and the fence to pass before any provider
/// write.
///
/// Runs to completion even if the caller goes away: the record must not be left running.
pub async fn run<M, W, Fut>(
    store: Arc<dyn Store>,
    settings: &PaymentsSettings,
    call: IdempotentCall,
    language: Language,
    work: W,
) -> Result<M, Status>
where
    M: prost::Message + Default + 'static,
    W: FnOnce(Attempt) -> Fut + Send + 'static,
    Fut: Future<Output = Result<M, PaymentsError>> + Send,
{
    use tracing::Instrument;
    let settings = settings.clone();
    // The work keeps the caller's span (and trace) although it runs in its own task.
    // Boxed, like the work inside: the task moves its future several times (rust-lang/rust#62958).
    let task =
        tokio::spawn(Box::pin(
            async move {
                let scope = IdempotencyScope {
                    operation: call.operation,
                    key: &call.key,
                };
                let claim =
                    call.claims_reference
                        .as_ref()
                        .map(|(reference, provider)| ReferenceClaim {
                            reference,
                            ttl: settings.payin_ttl,
                            provider,
                        });
                let attempt =
                    match acquire(&store, scope, &call.fingerprint, claim, &settings, language)
                        .await?
                    {
                        Acquisition::Owner(attempt) => attempt,
                        Acquisition::Replay(outcome) => return replay(outcome),
                    };
                // The status is made once: the caller gets exactly what a replay will get.
                let result = attempt
                    .renewing(Box::pin(work(attempt.clone())))
                    .await
                    .map_err(|e| (error::disposition(&e), error::to_status(&e, language)));
                keep(&*store, &attempt, result, &settings, language).await
            }
            .instrument(tracing::Span::current()),
        ));
    task.await.unwrap_or_else(|e| {
        tracing::error!("idempotent task failed: {e}");
        Err(Status::internal("internal error"))
    })
}

enum Acquisition {
    Owner(Attempt),
    Replay(StoredOutcome),
}

/// Begins the record, waiting (bounded) while another call with the same key runs.
async fn acquire(
    store: &Arc<dyn Store>,
    scope: IdempotencyScope<'_>,
    fingerprint: &str,
    claim: Option<ReferenceClaim<'_>>,
    settings: &PaymentsSettings,
    language: Language,
) -> Result<Acquisition, Status> {
    let deadline = Instant::now() + settings.idempotency_wait;
    let mut pause = WAIT_POLL_START;
    let count = |result: &'static str| {
        metrics::counter!(IDEMPOTENCY, "operation" => scope.operation, "result" => result)
            .increment(1)
    };
    loop {
        let sent = Instant::now();
        // The first lease already covers the provider call that usually follows at once, so
        // the fence before it needs no round trip of its own.
        let first_lease = settings.provider_call_bound() + Duration::from_secs(1);
        let begun = store
            .begin(
                scope,
                fingerprint,
                first_lease,
                settings.idempotency_ttl,
                claim,
            )
            .await
            .map_err(|e| error::store_unavailable(&e, language))?;
        match begun {
            Begin::Acquired(acquired) => {
                let leases = (settings.attempt_lease, settings.provider_call_bound());
                let sent_lease_end = sent + first_lease;
                let attempt = Attempt::hold(
                    store.clone(),
                    scope,
                    acquired,
                    leases,
                    sent_lease_end,
                    settings.idempotency_ttl,
                );
                return Ok(Acquisition::Owner(attempt));
            }
            Begin::Replay(outcome) => {
                count("replayed");
                return Ok(Acquisition::Replay(outcome));
            }
            Begin::Conflict => {
                count("conflict");
                return Err(error::idempotency_conflict(language));
            }
            Begin::InFlight => {
                let now = Instant::now();
                if now >= deadline {
                    count("aborted");
                    return Err(error::still_in_flight(language));
                }
                if pause == WAIT_POLL_START {
                    count("waited");
                }
                tokio::time::sleep(pause.min(deadline - now)).await;
                pause = (pause * 2).min(WAIT_POLL_MAX);
            }
        }
    }
}

/// Keeps the outcome as §3 says. A final answer reaches the caller only once it is recorded
/// under this attempt's ownership; otherwise the caller is told to retry with the same key,
/// and the retry replays (or reconciles) what was really kept.
async fn keep<M: prost::Message>(
    store: &dyn Store,
    attempt: &Attempt,
    result: Result<M, (Disposition, Status)>,
    settings: &PaymentsSettings,
    language: Language,
) -> Result<M, Status> {
    let scope = attempt.scope();
    let owner = attempt.owner();
    let ttl = settings.idempotency_ttl;
    let kept = match &result {
        Ok(message) => {
            let outcome = StoredOutcome::ok(message.encode_to_vec());
            // The save that kept the payin answered with may have finished the record.
            match attempt.finished_with(&outcome) {
                true => Ok(true),
                false => store.finish(scope, owner, &outcome, ttl).await,
            }
        }
        Err((Disposition::Record, status)) => {
            let outcome = StoredOutcome {
                code: status.code() as i32,
                message: status.message().to_owned(),
                body: status.details().to_vec(),
            };
            store.finish(scope, owner, &outcome, ttl).await
        }
        // Transient or invalid: nothing is replayed, so the answer stands either way.
        Err((Disposition::Release, status)) => {
            log_unkept(scope.operation, store.release(scope, owner).await);
            return Err(status.clone());
        }
        Err((Disposition::Forget, status)) => {
            log_unkept(scope.operation, store.forget(scope, owner).await);
            return Err(status.clone());
        }
        // Not released: the lease, renewed to `settle` from now, lapses by itself, and the
        // attempt that takes the record over then is a resumed one.
        Err((Disposition::HoldFor(settle), status)) => {
            log_unkept(scope.operation, store.renew(scope, owner, *settle).await);
            return Err(status.clone());
        }
    };
    match kept {
        Ok(true) => result.map_err(|(_, status)| status),
        other => {
            log_unkept(scope.operation, other);
            Err(error::outcome_not_recorded(language))
        }
    }
}

fn log_unkept(operation: &'static str, kept: Result<bool, crate::store::StoreError>) {
    match kept {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(
                operation,
                "the idempotency record was taken over; this attempt's outcome is not kept"
            )
        }
        Err(e) => tracing::warn!(operation, error = %e, "could not keep the idempotency outcome"),
    }
}

fn replay<M: prost::Message + Default>(outcome: StoredOutcome) -> Result<M, Status> {
    if outcome.code == Code::Ok as i32 {
        return M::decode(&outcome.body[..])
            .map_err(|_| Status::internal("stored response is unreadable"));
    }
    Err(Status::with_details(
        Code::from_i32(outcome.code),
        outcome.message,
        outcome.body.into(),
    ))
}
