//! The one status a caller can trust, and the state machine every provider's payins follow
//! (contract §2): terminal statuses, the order, never backwards. Each provider module maps
//! its own answers onto it.

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

#[cfg(test)]
mod tests {
    use super::*;
    use ConfirmationStatus as C;
    use PayinStatus as P;
    use TransactionStatus as T;

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
