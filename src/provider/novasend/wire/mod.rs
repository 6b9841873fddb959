//! Novasend's JSON, both response shapes (2025: `reference: tr_…` + `customerReference`;
//! 2026: `id: pr_…` + `reference` = merchant's), read tolerantly.

mod error;
mod payin;
mod refund;
mod requests;
mod values;

pub use error::parse_error;
pub use payin::parse_payin;
pub use refund::parse_refund;
pub use requests::{CreateSessionBody, RefundBody};
