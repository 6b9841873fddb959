//! The payments domain: validated commands, the payin and its status rules. No I/O here.

pub mod confirm_payin;
pub mod country;
pub mod create_payin;
mod fingerprint;
pub mod idempotency_key;
pub mod lang;
pub mod next_action;
pub mod operator;
pub mod payin;
pub mod phone;
pub mod reference;
pub mod refund_command;
pub mod routes;
pub mod status;
pub mod violations;

pub use confirm_payin::ConfirmPayinCommand;
pub use country::Countries;
pub use create_payin::{CreatePayinCommand, CreatePayinInput, MAX_AMOUNT};
pub use idempotency_key::{IDEMPOTENCY_METADATA, IdempotencyKey};
pub use lang::Language;
pub use next_action::{NextAction, NextActionKind};
pub use operator::Operator;
pub use payin::{
    Applied, Failure, ObservationSource, Payin, ProviderPayin, Refund, RefundStatus,
    RefundTransaction, RefundType, Transaction,
};
pub use phone::{PhoneNumber, mask_phone};
pub use reference::{Reference, parse_lookup_reference};
pub use refund_command::RefundCommand;
pub use routes::Routes;
pub use status::{ConfirmationStatus, PayinStatus, Progress, TransactionStatus};
pub use violations::{FieldViolation, Violation, Violations};
