//! The payer's mobile-money operator, which HUB2 needs to ask the right network (§9).

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Operator {
    Orange,
    Mtn,
    Moov,
    Wave,
}

impl Operator {
    pub const NAMES: &'static str = "orange, mtn, moov, wave";

    /// One of the four names, in any case (`Orange` is `orange`).
    pub fn parse(raw: &str) -> Option<Self> {
        match raw.to_ascii_lowercase().as_str() {
            "orange" => Some(Self::Orange),
            "mtn" => Some(Self::Mtn),
            "moov" => Some(Self::Moov),
            "wave" => Some(Self::Wave),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Orange => "orange",
            Self::Mtn => "mtn",
            Self::Moov => "moov",
            Self::Wave => "wave",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_four_operators_in_any_case_and_nothing_else() {
        for name in ["orange", "MTN", "Moov", "wave"] {
            let operator = Operator::parse(name).unwrap();
            assert_eq!(operator.as_str(), name.to_ascii_lowercase());
        }
        for other in ["", "airtel", "orange ", "free"] {
            assert_eq!(Operator::parse(other), None, "{other:?}");
        }
    }
}
