//! Phone numbers: validated on the way in, masked on the way out to logs.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A phone number as a customer or Novasend gave it. `Debug` and `Display` show only the
/// last four digits, so that a stray `{:?}` in a log line or panic cannot leak it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Wraps a number read from Novasend, which is not ours to validate.
    pub fn from_provider(raw: impl Into<String>) -> Self {
        Self(raw.into())
    }

    /// Parses an E.164 number: `+`, then 8 to 15 digits, the first not 0.
    pub fn parse_e164(raw: &str) -> Option<Self> {
        let digits = raw.strip_prefix('+')?;
        let valid = (8..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        valid.then(|| Self(raw.to_owned()))
    }

    /// The full number, for Novasend and for the caller that owns the payin — never for logs.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn masked(&self) -> String {
        mask_phone(&self.0)
    }
}

/// Keeps the last four characters and hides the rest: `+2250700000042` → `**********0042`.
pub fn mask_phone(raw: &str) -> String {
    let chars: Vec<char> = raw.chars().collect();
    let keep = chars.len().min(4);
    let hidden = chars.len() - keep;
    let mut masked = "*".repeat(hidden);
    masked.extend(&chars[hidden..]);
    masked
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneNumber({})", self.masked())
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_e164() {
        for ok in [
            "+22507000000",
            "+2250700000042",
            "+123456789012345",
            "+12345678",
        ] {
            assert!(PhoneNumber::parse_e164(ok).is_some(), "{ok}");
        }
        for bad in [
            "",
            "+",
            "2250700000042",
            "+0250700000042",
            "+1234567",
            "+1234567890123456",
            "+225 07000000",
            "+225-0700000",
            "++22507000000",
            "+٢٢٥٠٧٠٠٠٠٠٠٠",
        ] {
            assert!(PhoneNumber::parse_e164(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn never_shows_more_than_four_digits() {
        let phone = PhoneNumber::parse_e164("+2250700000042").unwrap();
        assert_eq!(format!("{phone:?}"), "PhoneNumber(**********0042)");
        assert_eq!(phone.to_string(), "**********0042");
        assert_eq!(mask_phone("12"), "12");
        assert_eq!(mask_phone(""), "");
    }
}
