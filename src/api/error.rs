//! Errors → gRPC status (contract §4), in the caller's language, and what each means for the
//! idempotency record.

use crate::domain::{Language, Violations};
use crate::payments::{NotRefundable, PaymentsError};
use crate::provider::{ProviderError, ProviderFailure};
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
    /// A transient one whose write may still be under way upstream: the record stays held
    /// this long (its lease lapses then), and the retry after it reconciles first.
    HoldFor(std::time::Duration),
}

pub fn disposition(error: &PaymentsError) -> Disposition {
    match error {
        PaymentsError::Invalid(_) => Disposition::Forget,
        PaymentsError::NotFound
        | PaymentsError::NotConfirmable
        | PaymentsError::NotRefundable(_)
        | PaymentsError::ReferenceTaken => Disposition::Record,
        PaymentsError::OutcomeSettling(settle) => Disposition::HoldFor(*settle),
        PaymentsError::OutcomeUnknown
        | PaymentsError::Store(_)
        | PaymentsError::ProviderNotEnabled(_) => Disposition::Release,
        PaymentsError::Provider(failure) => match failure.error {
            ProviderError::NotSent(_)
            | ProviderError::OutcomeUnknown(_)
            | ProviderError::RateLimited(_) => Disposition::Release,
            ProviderError::Conflict(_)
            | ProviderError::Rejected(_)
            | ProviderError::NotFound(_)
            | ProviderError::Credentials(_)
            | ProviderError::Malformed(_)
            | ProviderError::Unexpected { .. }
            | ProviderError::Unsupported(_) => Disposition::Record,
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
        PaymentsError::NotRefundable(NotRefundable::NotOffered(provider)) => {
            Status::failed_precondition(language.pick(
                format!("refunds are not available for {provider} payins"),
                format!("les remboursements ne sont pas disponibles pour les paiements {provider}"),
            ))
        }
        PaymentsError::NotConfirmable => Status::failed_precondition(l(
            "this payin does not wait for a one-time code (its next action is not OTP)",
            "ce paiement n'attend pas de code à usage unique (son action suivante n'est pas OTP)",
        )),
        PaymentsError::ReferenceTaken => Status::already_exists(l(
            "this reference is already used by another payin",
            "cette référence est déjà utilisée par un autre paiement",
        )),
        PaymentsError::OutcomeSettling(settle) => Status::unavailable(language.pick(
            format!(
                "outcome unknown; retry with the same key in {} s",
                settle.as_secs()
            ),
            format!(
                "résultat inconnu ; réessayez avec la même clé dans {} s",
                settle.as_secs()
            ),
        )),
        PaymentsError::OutcomeUnknown => Status::unavailable(l(
            "outcome unknown, retry with the same key",
            "résultat inconnu, réessayez avec la même clé",
        )),
        PaymentsError::Store(e) => store_unavailable(e, language),
        PaymentsError::Provider(failure) => provider_status(failure, language),
        PaymentsError::ProviderNotEnabled(name) => Status::unavailable(language.pick(
            &format!("this payin's provider `{name}` is not enabled on this service"),
            &format!("le fournisseur `{name}` de ce paiement n'est pas activé sur ce service"),
        )),
    }
}

/// The provider's failure, in the caller's language, naming the payin's provider.
fn provider_status(failure: &ProviderFailure, language: Language) -> Status {
    let p = failure.provider;
    let pick = |en, fr| language.pick(en, fr);
    let with = |en: String, fr: String, detail: &str| format!("{}: {detail}", pick(en, fr));
    match &failure.error {
        ProviderError::NotSent(_) => Status::unavailable(pick(
            format!("{p} is unreachable; retry later"),
            format!("{p} est injoignable ; réessayez plus tard"),
        )),
        ProviderError::OutcomeUnknown(reason) => Status::unavailable(with(
            format!("{p} did not give an answer; retry with the same key"),
            format!("{p} n'a pas donné de réponse ; réessayez avec la même clé"),
            reason,
        )),
        ProviderError::RateLimited(message) => Status::resource_exhausted(with(
            format!("{p} rate limit reached; retry later"),
            format!("limite de débit de {p} atteinte ; réessayez plus tard"),
            message,
        )),
        ProviderError::Conflict(message) => Status::already_exists(with(
            format!("{p} reports the reference or key as already used"),
            format!("{p} signale la référence ou la clé comme déjà utilisée"),
            message,
        )),
        ProviderError::Rejected(message) => Status::invalid_argument(with(
            format!("{p} rejected the request"),
            format!("{p} a refusé la requête"),
            message,
        )),
        ProviderError::NotFound(_) => {
            Status::not_found(language.pick("payin not found", "paiement introuvable"))
        }
        ProviderError::Credentials(status) => {
            let settings = failure.credential_settings;
            Status::internal(format!(
                "{} (HTTP {status})",
                pick(
                    format!(
                        "{p} refused this service's credentials; check {}",
                        settings.join(" and ")
                    ),
                    format!(
                        "{p} a refusé les identifiants de ce service ; vérifiez {}",
                        settings.join(" et ")
                    ),
                )
            ))
        }
        ProviderError::Malformed(what) => Status::internal(with(
            format!("malformed {p} response"),
            format!("réponse de {p} mal formée"),
            what,
        )),
        ProviderError::Unsupported(what) => Status::failed_precondition(pick(
            format!("{p} does not offer {what}"),
            format!("{p} ne propose pas cela ({what})"),
        )),
        ProviderError::Unexpected { status, message } => Status::internal(format!(
            "{} (HTTP {status}): {message}",
            pick(
                format!("unexpected {p} answer"),
                format!("réponse inattendue de {p}")
            )
        )),
    }
}
