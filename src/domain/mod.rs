//! The payments domain: validated commands, the payin and its status rules. No I/O here.

pub mod country;
pub mod lang;
pub mod next_action;
pub mod payin;
pub mod phone;
pub mod request;
pub mod status;

pub use country::Countries;
pub use lang::Language;
pub use next_action::{NextAction, NextActionKind};
pub use payin::{
    Applied, Failure, ObservationSource, Payin, ProviderPayin, Refund, RefundStatus,
    RefundTransaction, RefundType, Transaction,
};
pub use phone::{PhoneNumber, mask_phone};
pub use request::{
    CreatePayinCommand, IdempotencyKey, Reference, RefundCommand, Violation, Violations,
};
pub use status::{ConfirmationStatus, PayinStatus, Progress, TransactionStatus};
