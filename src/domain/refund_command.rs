//! Refund, validated.

use super::fingerprint::fingerprint;
use super::reference::Reference;
use super::violations::{Violation, Violations, check_optional_text};
use serde::Serialize;

/// A validated Refund. Whether `amount` fits the payin is checked once the payin is known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefundCommand {
    pub reference: Reference,
    pub reason: String,
    pub external_reference: String,
    /// 0 means the whole payin.
    pub amount: i64,
}

impl RefundCommand {
    pub fn parse(
        reference: &str,
        reason: &str,
        external_reference: &str,
        amount: i64,
    ) -> Result<Self, Violations> {
        let mut violations = Violations::default();
        let reference = Reference::parse(reference)
            .map_err(|v| violations.add("reference", v))
            .ok();
        let trimmed_reason = reason.trim();
        if trimmed_reason.is_empty() {
            violations.add("reason", Violation::Required);
        } else {
            check_optional_text(&mut violations, "reason", trimmed_reason);
        }
        check_optional_text(&mut violations, "external_reference", external_reference);
        if amount < 0 {
            violations.add("amount", Violation::RefundAmountNegative);
        }
        violations.into_result(|| RefundCommand {
            reference: reference.expect("no violation means a reference"),
            reason: trimmed_reason.to_owned(),
            external_reference: external_reference.to_owned(),
            amount,
        })
    }

    /// The amount to refund of a payin of `payin_amount`, and whether that is the whole payin.
    pub fn resolve_amount(&self, payin_amount: i64) -> Result<(i64, bool), Violations> {
        match self.amount {
            0 => Ok((payin_amount, true)),
            a if a == payin_amount => Ok((a, true)),
            a if a < payin_amount => Ok((a, false)),
            _ => Err(Violations::single(
                "amount",
                Violation::RefundAmountAbovePayin { payin_amount },
            )),
        }
    }

    pub fn fingerprint(&self) -> String {
        fingerprint("refund", self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refund_rules() {
        let ok = RefundCommand::parse("order-1", "  customer asked ", "", 0).unwrap();
        assert_eq!(ok.reason, "customer asked");
        assert_eq!(ok.resolve_amount(300).unwrap(), (300, true));
        let partial = RefundCommand::parse("order-1", "r", "ext-1", 100).unwrap();
        assert_eq!(partial.resolve_amount(300).unwrap(), (100, false));
        let exact = RefundCommand::parse("order-1", "r", "", 300).unwrap();
        assert_eq!(exact.resolve_amount(300).unwrap(), (300, true));
        let above = RefundCommand::parse("order-1", "r", "", 301).unwrap();
        assert_eq!(above.resolve_amount(300).unwrap_err().0[0].field, "amount");

        let bad = RefundCommand::parse("", " ", &"x".repeat(256), -1).unwrap_err();
        let fields: Vec<_> = bad.0.iter().map(|v| v.field).collect();
        assert_eq!(
            fields,
            vec!["reference", "reason", "external_reference", "amount"]
        );
        let long_reason = RefundCommand::parse("r", &"x".repeat(256), "", 0).unwrap_err();
        assert_eq!(
            long_reason.0[0].violation,
            Violation::TextTooLong { max: 255 }
        );
        for reason in ["line\nbreak", "bell\u{7}", "tab\there"] {
            let refused = RefundCommand::parse("r", reason, "", 0).unwrap_err();
            assert_eq!(refused.0[0].field, "reason");
            assert_eq!(refused.0[0].violation, Violation::ControlCharacters);
        }
    }
}
