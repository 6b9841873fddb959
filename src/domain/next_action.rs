//! What the payer must do next while a payin awaits confirmation (contract §9).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NextActionKind {
    /// Open `url`.
    Redirect,
    /// Dial the USSD code the message gives.
    Ussd,
    /// Give the code received to ConfirmPayin.
    Otp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextAction {
    pub kind: NextActionKind,
    pub message: String,
    pub url: String,
}
