//! Novasend's layered fields → the gateway's `PayinStatus` (contract §2's table). Only this
//! module knows what Novasend's status words mean.

use crate::domain::{ConfirmationStatus, PayinStatus, TransactionStatus};

/// The fields of a Novasend payin the status depends on, already read from its JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatusSignals<'a> {
    /// Novasend's raw top-level `status` (processing, processed, expired …).
    pub provider_status: &'a str,
    pub confirmation_required: bool,
    pub confirmation_status: ConfirmationStatus,
    /// `None` when the transaction is null, `{}` or carries no status.
    pub transaction_status: Option<TransactionStatus>,
    /// `failure` is a non-empty object.
    pub has_failure: bool,
}

/// Contract §2's table; the first matching row wins.
pub fn payin_status(signals: &StatusSignals<'_>) -> PayinStatus {
    let provider_status = signals.provider_status.trim().to_ascii_lowercase();
    if signals.has_failure || signals.transaction_status == Some(TransactionStatus::Failed) {
        PayinStatus::Failed
    } else if signals.transaction_status == Some(TransactionStatus::Completed) {
        PayinStatus::Succeeded
    } else if signals.confirmation_status == ConfirmationStatus::Declined {
        PayinStatus::Declined
    } else if provider_status == "expired"
        || signals.confirmation_status == ConfirmationStatus::Expired
    {
        PayinStatus::Expired
    } else if signals.confirmation_status == ConfirmationStatus::Accepted
        || provider_status == "processed"
    {
        PayinStatus::Processing
    } else if signals.confirmation_required {
        PayinStatus::AwaitingConfirmation
    } else {
        PayinStatus::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ConfirmationStatus as C;
    use PayinStatus as P;
    use TransactionStatus as T;

    fn signals(
        provider_status: &'static str,
        confirmation_required: bool,
        confirmation_status: C,
        transaction_status: Option<T>,
        has_failure: bool,
    ) -> StatusSignals<'static> {
        StatusSignals {
            provider_status,
            confirmation_required,
            confirmation_status,
            transaction_status,
            has_failure,
        }
    }

    #[test]
    fn every_row_of_the_contract_table() {
        let rows = [
            // failure object, or transaction failed → FAILED (wins over everything below)
            (
                signals("processed", true, C::Accepted, Some(T::Completed), true),
                P::Failed,
            ),
            (signals("processing", true, C::None, None, true), P::Failed),
            (
                signals("processed", true, C::Accepted, Some(T::Failed), false),
                P::Failed,
            ),
            // transaction completed → SUCCEEDED, whatever the confirmation says
            (
                signals("processed", true, C::Accepted, Some(T::Completed), false),
                P::Succeeded,
            ),
            (
                signals("processed", true, C::None, Some(T::Completed), false),
                P::Succeeded,
            ),
            (
                signals("expired", true, C::Declined, Some(T::Completed), false),
                P::Succeeded,
            ),
            // declined → DECLINED, before expiry
            (
                signals("expired", true, C::Declined, None, false),
                P::Declined,
            ),
            (
                signals("processing", true, C::Declined, Some(T::Pending), false),
                P::Declined,
            ),
            // expired, by status or by confirmation
            (signals("expired", true, C::None, None, false), P::Expired),
            (signals("EXPIRED", false, C::None, None, false), P::Expired),
            (
                signals("processing", true, C::Expired, None, false),
                P::Expired,
            ),
            // accepted, or processed with no final transaction → PROCESSING
            (
                signals("processing", true, C::Accepted, None, false),
                P::Processing,
            ),
            (
                signals("processed", true, C::None, None, false),
                P::Processing,
            ),
            (
                signals("processed", false, C::None, Some(T::Pending), false),
                P::Processing,
            ),
            // confirmation required otherwise → AWAITING_CONFIRMATION
            (
                signals("processing", true, C::None, None, false),
                P::AwaitingConfirmation,
            ),
            (
                signals("processing", true, C::Pending, Some(T::Pending), false),
                P::AwaitingConfirmation,
            ),
            // anything else → PENDING
            (
                signals("processing", false, C::None, None, false),
                P::Pending,
            ),
            (signals("", false, C::Pending, None, false), P::Pending),
            (
                signals("something-new", false, C::None, Some(T::Pending), false),
                P::Pending,
            ),
        ];
        for (input, expected) in rows {
            assert_eq!(payin_status(&input), expected, "{input:?}");
        }
    }
}
