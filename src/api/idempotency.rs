//! Runs an operation under its idempotency record (contract §3).

use super::error::{self, Disposition};
use crate::domain::Language;
use crate::payments::{PaymentsError, PaymentsSettings};
use crate::store::{Begin, IdempotencyScope, Store, StoredOutcome};
use crate::telemetry::metrics::IDEMPOTENCY;
use std::sync::Arc;
use std::time::Duration;
use tonic::{Code, Status};

const WAIT_POLL_START: Duration = Duration::from_millis(20);
const WAIT_POLL_MAX: Duration = Duration::from_millis(250);

/// Opens (or replays, or joins) the record of `scope`, runs `work` if this call owns it, and
/// keeps its outcome as contract §3 says. `work` receives whether an earlier attempt ended
/// without a known outcome.
///
/// Runs to completion even if the caller goes away: the record must not be left running.
pub async fn run<M, W, Fut>(
    store: Arc<dyn Store>,
    settings: &PaymentsSettings,
    operation: &'static str,
    key: String,
    fingerprint: String,
    language: Language,
    work: W,
) -> Result<M, Status>
where
    M: prost::Message + Default + 'static,
    W: FnOnce(bool) -> Fut + Send + 'static,
    Fut: Future<Output = Result<M, PaymentsError>> + Send,
{
    use tracing::Instrument;
    let settings = settings.clone();
    // The work keeps the caller's span (and trace) although it runs in its own task.
    let task = tokio::spawn(
        async move {
            let scope = IdempotencyScope {
                operation,
                key: &key,
            };
            let (owner, resumed) =
                match acquire(&*store, scope, &fingerprint, &settings, language).await? {
                    Acquired::Owner { owner, resumed } => (owner, resumed),
                    Acquired::Replay(outcome) => return replay(outcome),
                };
            // The status is made once: the caller gets exactly what a replay will get.
            let result = work(resumed)
                .await
                .map_err(|e| (error::disposition(&e), error::to_status(&e, language)));
            let kept = match &result {
                Ok(message) => {
                    let outcome = StoredOutcome {
                        code: 0,
                        message: String::new(),
                        body: message.encode_to_vec(),
                    };
                    store
                        .finish(scope, &owner, &outcome, settings.idempotency_ttl)
                        .await
                }
                Err((Disposition::Record, status)) => {
                    let outcome = StoredOutcome {
                        code: status.code() as i32,
                        message: status.message().to_owned(),
                        body: status.details().to_vec(),
                    };
                    store
                        .finish(scope, &owner, &outcome, settings.idempotency_ttl)
                        .await
                }
                Err((Disposition::Release, _)) => store.release(scope, &owner).await,
                Err((Disposition::Forget, _)) => store.forget(scope, &owner).await,
            };
            if let Err(e) = kept {
                // The answer stands; a retry with the same key resumes and reconciles.
                tracing::warn!(operation, error = %e, "could not keep the idempotency outcome");
            }
            result.map_err(|(_, status)| status)
        }
        .instrument(tracing::Span::current()),
    );
    task.await.unwrap_or_else(|e| {
        tracing::error!(operation, "idempotent task failed: {e}");
        Err(Status::internal("internal error"))
    })
}

enum Acquired {
    Owner { owner: String, resumed: bool },
    Replay(StoredOutcome),
}

/// Begins the record, waiting (bounded) while another call with the same key runs.
async fn acquire(
    store: &dyn Store,
    scope: IdempotencyScope<'_>,
    fingerprint: &str,
    settings: &PaymentsSettings,
    language: Language,
) -> Result<Acquired, Status> {
    let deadline = tokio::time::Instant::now() + settings.idempotency_wait;
    let mut pause = WAIT_POLL_START;
    loop {
        let begun = store
            .begin(
                scope,
                fingerprint,
                settings.lease(),
                settings.idempotency_ttl,
            )
            .await
            .map_err(|e| error::store_unavailable(&e, language))?;
        match begun {
            Begin::Acquired { owner, resumed } => return Ok(Acquired::Owner { owner, resumed }),
            Begin::Replay(outcome) => {
                metrics::counter!(IDEMPOTENCY, "operation" => scope.operation, "result" => "replayed").increment(1);
                return Ok(Acquired::Replay(outcome));
            }
            Begin::Conflict => {
                metrics::counter!(IDEMPOTENCY, "operation" => scope.operation, "result" => "conflict").increment(1);
                return Err(error::idempotency_conflict(language));
            }
            Begin::InFlight => {
                let now = tokio::time::Instant::now();
                if now >= deadline {
                    metrics::counter!(IDEMPOTENCY, "operation" => scope.operation, "result" => "aborted").increment(1);
                    return Err(error::still_in_flight(language));
                }
                if pause == WAIT_POLL_START {
                    metrics::counter!(IDEMPOTENCY, "operation" => scope.operation, "result" => "waited").increment(1);
                }
                tokio::time::sleep(pause.min(deadline - now)).await;
                pause = (pause * 2).min(WAIT_POLL_MAX);
            }
        }
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
