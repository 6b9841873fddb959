//! HUB2's payment intent → the gateway's `PayinStatus` (contract §9's table). Only this
//! module knows what HUB2's status words mean.

use crate::domain::PayinStatus;

/// The fields of an intent the status depends on, already read from its JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntentSignals<'a> {
    /// The intent's raw `status`, lower case.
    pub status: &'a str,
    /// `lastPaymentFailure` is present.
    pub has_failure: bool,
    /// The last element of `payments[]` has `status = failed`.
    pub latest_payment_failed: bool,
}

/// Contract §9's table; the first matching row wins.
pub fn payin_status(signals: &IntentSignals<'_>) -> PayinStatus {
    match signals.status {
        "successful" => PayinStatus::Succeeded,
        _ if signals.has_failure || signals.latest_payment_failed => PayinStatus::Failed,
        "canceled" => PayinStatus::Expired,
        "processing" => PayinStatus::Processing,
        "action_required" => PayinStatus::AwaitingConfirmation,
        // `payment_required`, and any word HUB2 may add: nothing has happened yet.
        _ => PayinStatus::Pending,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PayinStatus as P;

    fn signals(status: &str, has_failure: bool, latest_payment_failed: bool) -> IntentSignals<'_> {
        IntentSignals {
            status,
            has_failure,
            latest_payment_failed,
        }
    }

    #[test]
    fn every_row_of_the_contract_table() {
        let rows = [
            // successful wins over everything
            (signals("successful", true, true), P::Succeeded),
            (signals("successful", false, false), P::Succeeded),
            // a failure, or a failed latest attempt → FAILED
            (signals("processing", true, false), P::Failed),
            (signals("action_required", false, true), P::Failed),
            (signals("canceled", true, false), P::Failed),
            (signals("payment_required", false, true), P::Failed),
            // canceled → EXPIRED
            (signals("canceled", false, false), P::Expired),
            (signals("processing", false, false), P::Processing),
            (
                signals("action_required", false, false),
                P::AwaitingConfirmation,
            ),
            (signals("payment_required", false, false), P::Pending),
            // a word HUB2 may add later is not taken for progress
            (signals("something_new", false, false), P::Pending),
        ];
        for (input, expected) in rows {
            assert_eq!(payin_status(&input), expected, "{input:?}");
        }
    }
}
