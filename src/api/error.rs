//! Errors → gRPC status (contract §4), in the caller's language, and what each means for the
//! idempotency record.

use crate::domain::{Language, Violations};
use crate::payments::{NotRefundable, PaymentsError};
use crate::provider::ProviderError;
use crate::store::StoreError;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// What becomes of the idempotency record after an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// A definitive answer: replayed to every retry with the same key.
    Record,
    /// A transient one: the next retry with the same key carries the work through.
    Release,
    /// The request was invalid: no trace is kept.
    Forget,
}

pub fn disposition(error: &PaymentsError) -> Disposition {
    match error {
        PaymentsError::Invalid(_) => Disposition::Forget,
        PaymentsError::NotFound
        | PaymentsError::NotRefundable(_)
        | PaymentsError::ReferenceTaken => Disposition::Record,
        PaymentsError::OutcomeUnknown | PaymentsError::Store(_) => Disposition::Release,
        PaymentsError::Provider(e) => match e {
            ProviderError::NotSent(_)
            | ProviderError::OutcomeUnknown(_)
            | ProviderError::RateLimited(_) => Disposition::Release,
            ProviderError::Conflict(_)
            | ProviderError::Rejected(_)
            | ProviderError::NotFound(_)
            | ProviderError::Credentials(_)
            | ProviderError::Malformed(_)
            | ProviderError::Unexpected { .. } => Disposition::Record,
        },
    }
}

/// INVALID_ARGUMENT with one `google.rpc.BadRequest` field violation per refused field.
pub fn invalid_request(violations: &Violations, language: Language) -> Status {
    let mut details = ErrorDetails::new();
    let mut summary = Vec::with_capacity(violations.0.len());
    for v in &violations.0 {
        let description = v.violation.describe(language);
        summary.push(format!("{}: {description}", v.field));
        details.add_bad_request_violation(v.field, description);
    }
    let lead = language.pick("invalid request", "requête invalide");
    Status::with_error_details(
        Code::InvalidArgument,
        format!("{lead}: {}", summary.join("; ")),
        details,
    )
}

pub fn idempotency_conflict(language: Language) -> Status {
    Status::failed_precondition(language.pick(
        "this idempotency key was already used with a different request",
        "cette clé d'idempotence a déjà servi pour une autre requête",
    ))
}

pub fn still_in_flight(language: Language) -> Status {
    Status::aborted(language.pick(
        "a request with this idempotency key is still in progress; retry with the same key",
        "une requête avec cette clé d'idempotence est encore en cours ; réessayez avec la même clé",
    ))
}

/// The replica is at its bound of calls in progress: nothing was done.
pub fn overloaded(language: Language) -> Status {
    Status::resource_exhausted(language.pick(
        "this server has too many calls in progress; retry shortly",
        "ce serveur a trop d'appels en cours ; réessayez dans un instant",
    ))
}

/// A final outcome that could not be recorded is not given: the retry gets what was kept.
pub fn outcome_not_recorded(language: Language) -> Status {
    Status::unavailable(language.pick(
        "the outcome could not be recorded; retry with the same key",
        "le résultat n'a pas pu être enregistré ; réessayez avec la même clé",
    ))
}

pub fn store_unavailable(error: &StoreError, language: Language) -> Status {
    match error {
        StoreError::LeaseLost => Status::aborted(language.pick(
            "another attempt with this idempotency key took over; retry with the same key",
            "une autre tentative avec cette clé d'idempotence a pris le relais ; réessayez avec la même clé",
        )),
        StoreError::Unavailable(_) => Status::unavailable(language.pick(
            "the idempotency store is unavailable; retry with the same key",
            "le stockage d'idempotence est indisponible ; réessayez avec la même clé",
        )),
        StoreError::Corrupt(what) => Status::internal(format!(
            "{}: {what}",
            language.pick("unreadable stored data", "données stockées illisibles")
        )),
    }
}

pub fn to_status(error: &PaymentsError, language: Language) -> Status {
    let l = |en: &str, fr: &str| language.pick(en, fr).to_owned();
    match error {
        PaymentsError::Invalid(violations) => invalid_request(violations, language),
        PaymentsError::NotFound => Status::not_found(l("payin not found", "paiement introuvable")),
        PaymentsError::NotRefundable(NotRefundable::NotSucceeded(status)) => {
            let status = super::convert::payin_status(*status).as_str_name();
            Status::failed_precondition(match language {
                Language::En => {
                    format!("only a SUCCEEDED payin can be refunded; this one is {status}")
                }
                Language::Fr => format!(
                    "seul un paiement SUCCEEDED peut être remboursé ; celui-ci est {status}"
                ),
            })
        }
        PaymentsError::NotRefundable(NotRefundable::AlreadyRefunded) => {
            Status::failed_precondition(l(
                "this payin has already been refunded",
                "ce paiement a déjà été remboursé",
            ))
        }
        PaymentsError::NotRefundable(NotRefundable::AnotherRefundRequested) => {
            Status::failed_precondition(l(
                "a refund of this payin was already requested with another idempotency key; only that key may retry",
                "un remboursement de ce paiement a déjà été demandé avec une autre clé d'idempotence ; seule cette clé peut réessayer",
            ))
        }
        PaymentsError::ReferenceTaken => Status::already_exists(l(
            "this reference is already used by another payin",
            "cette référence est déjà utilisée par un autre paiement",
        )),
        PaymentsError::OutcomeUnknown => Status::unavailable(l(
            "outcome unknown, retry with the same key",
            "résultat inconnu, réessayez avec la même clé",
        )),
        PaymentsError::Store(e) => store_unavailable(e, language),
        PaymentsError::Provider(e) => provider_status(e, language),
    }
}

fn provider_status(error: &ProviderError, language: Language) -> Status {
    let with = |en: &str, fr: &str, detail: &str| format!("{}: {detail}", language.pick(en, fr));
    match error {
        ProviderError::NotSent(_) => Status::unavailable(language.pick(
            "Novasend is unreachable; retry later",
            "Novasend est injoignable ; réessayez plus tard",
        )),
        ProviderError::OutcomeUnknown(reason) => Status::unavailable(with(
            "Novasend did not give an answer; retry with the same key",
            "Novasend n'a pas donné de réponse ; réessayez avec la même clé",
            reason,
        )),
        ProviderError::RateLimited(message) => Status::resource_exhausted(with(
            "Novasend rate limit reached; retry later",
            "limite de débit de Novasend atteinte ; réessayez plus tard",
            message,
        )),
        ProviderError::Conflict(message) => Status::already_exists(with(
            "Novasend reports the reference or key as already used",
            "Novasend signale la référence ou la clé comme déjà utilisée",
            message,
        )),
        ProviderError::Rejected(message) => Status::invalid_argument(with(
            "Novasend rejected the request",
            "Novasend a refusé la requête",
            message,
        )),
        ProviderError::NotFound(_) => Status::not_found(language.pick("payin not found", "paiement introuvable")),
        ProviderError::Credentials(status) => Status::internal(format!(
            "{} (HTTP {status})",
            language.pick(
                "Novasend refused this service's credentials; check NOVASEND_API_KEY and NOVASEND_API_CLIENT",
                "Novasend a refusé les identifiants de ce service ; vérifiez NOVASEND_API_KEY et NOVASEND_API_CLIENT",
            )
        )),
        ProviderError::Malformed(what) => Status::internal(with(
            "malformed Novasend response",
            "réponse de Novasend mal formée",
            what,
        )),
        ProviderError::Unexpected { status, message } => Status::internal(format!(
            "{} (HTTP {status}): {message}",
            language.pick("unexpected Novasend answer", "réponse inattendue de Novasend")
        )),
    }
}
