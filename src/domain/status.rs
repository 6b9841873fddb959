//! The one status a caller can trust, computed from Novasend's layered fields (contract §2).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayinStatus {
    Pending,
    AwaitingConfirmation,
    Processing,
    Succeeded,
    Failed,
    Declined,
    Expired,
}

impl PayinStatus {
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Succeeded | Self::Failed | Self::Declined | Self::Expired
        )
    }

    /// PENDING < AWAITING_CONFIRMATION < PROCESSING < any terminal status.
    fn rank(self) -> u8 {
        match self {
            Self::Pending => 0,
            Self::AwaitingConfirmation => 1,
            Self::Processing => 2,
            Self::Succeeded | Self::Failed | Self::Declined | Self::Expired => 3,
        }
    }

    /// Whether moving from `self` to `next` respects the never-backwards rule: a terminal
    /// status is left for nothing else, and a lower rank never replaces a higher one.
    pub fn may_become(self, next: PayinStatus) -> bool {
        if self.is_terminal() {
            return next == self;
        }
        next.rank() >= self.rank()
    }
}

/// How far a payin has got, as streams report it: the status, then the confirmation, then
/// the transaction, compared in that order (contract §2: never backwards).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Progress {
    pub status: PayinStatus,
    pub confirmation: ConfirmationStatus,
    pub transaction: Option<TransactionStatus>,
}

impl Progress {
    fn ranks(&self) -> (u8, u8, u8) {
        let transaction = match self.transaction {
            None => 0,
            Some(TransactionStatus::Pending) => 1,
            Some(TransactionStatus::Completed | TransactionStatus::Failed) => 2,
        };
        (self.status.rank(), self.confirmation.rank(), transaction)
    }

    /// Whether `next` may follow `self`: a terminal status is never left, and the layers,
    /// compared in order, never go back. Two different answers of the same rank (accepted
    /// then declined, completed then failed) contradict each other: neither follows the other.
    pub fn may_become(&self, next: &Progress) -> bool {
        if self.status.is_terminal() && next.status != self.status {
            return false;
        }
        match self.ranks().cmp(&next.ranks()) {
            std::cmp::Ordering::Less => true,
            std::cmp::Ordering::Greater => false,
            std::cmp::Ordering::Equal => self == next,
        }
    }
}

/// The customer's answer to the confirmation request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ConfirmationStatus {
    #[default]
    None,
    Pending,
    Accepted,
    Declined,
    Expired,
}

impl ConfirmationStatus {
    /// None < Pending < an answer (accepted, declined, expired).
    fn rank(self) -> u8 {
        match self {
            Self::None => 0,
            Self::Pending => 1,
            Self::Accepted | Self::Declined | Self::Expired => 2,
        }
    }
}

/// The settlement system's verdict, the final source of truth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransactionStatus {
    Pending,
    Completed,
    Failed,
}

/// The provider fields the status depends on, already read from the provider's JSON.
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
pub fn derive_status(signals: &StatusSignals<'_>) -> PayinStatus {
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
            assert_eq!(derive_status(&input), expected, "{input:?}");
        }
    }

    #[test]
    fn progress_compares_status_then_confirmation_then_transaction() {
        let p = |status, confirmation, transaction| Progress {
            status,
            confirmation,
            transaction,
        };
        let accepted = p(P::Processing, C::Accepted, None);
        let accepted_pending = p(P::Processing, C::Accepted, Some(T::Pending));
        // Within one status, a layer never goes back.
        assert!(accepted.may_become(&accepted_pending));
        assert!(!accepted_pending.may_become(&accepted));
        assert!(!accepted.may_become(&p(P::Processing, C::None, None)));
        // A higher status may come with any layers.
        assert!(accepted_pending.may_become(&p(P::Succeeded, C::None, Some(T::Completed))));
        // Two answers of the same rank contradict each other.
        assert!(!accepted.may_become(&p(P::Processing, C::Declined, None)));
        let done = p(P::Succeeded, C::Accepted, Some(T::Completed));
        assert!(!done.may_become(&p(P::Succeeded, C::Accepted, Some(T::Failed))));
        assert!(!done.may_become(&p(P::Failed, C::Accepted, Some(T::Failed))));
        assert!(done.may_become(&done));
    }

    #[test]
    fn status_never_moves_backwards_nor_leaves_a_terminal_state() {
        let all = [
            P::Pending,
            P::AwaitingConfirmation,
            P::Processing,
            P::Succeeded,
            P::Failed,
            P::Declined,
            P::Expired,
        ];
        for from in all {
            for to in all {
                let allowed = from.may_become(to);
                let expected = if from.is_terminal() {
                    from == to
                } else {
                    from.rank() <= to.rank()
                };
                assert_eq!(allowed, expected, "{from:?} -> {to:?}");
            }
        }
        assert!(P::Pending.may_become(P::Succeeded));
        assert!(P::AwaitingConfirmation.may_become(P::Declined));
        assert!(!P::Processing.may_become(P::AwaitingConfirmation));
        assert!(!P::Succeeded.may_become(P::Failed));
        assert!(!P::Expired.may_become(P::Processing));
    }
}
