//! ConfirmPayin, validated: the payer's one-time code for a payin (§9).

use super::fingerprint::fingerprint;
use super::reference::Reference;
use super::violations::{Violation, Violations};
use serde::Serialize;

const MAX_CODE_LEN: usize = 32;

#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct ConfirmPayinCommand {
    pub reference: Reference,
    /// Sent to the provider, never logged: it is the payer's secret until used.
    pub code: String,
}

impl std::fmt::Debug for ConfirmPayinCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfirmPayinCommand")
            .field("reference", &self.reference)
            .field("code", &"[redacted]")
            .finish()
    }
}

impl ConfirmPayinCommand {
    pub fn parse(reference: &str, code: &str) -> Result<Self, Violations> {
        let mut violations = Violations::default();
        let reference = Reference::parse(reference)
            .map_err(|v| violations.add("reference", v))
            .ok();
        let printable = code.bytes().all(|b| b.is_ascii_graphic());
        if code.is_empty() {
            violations.add("code", Violation::Required);
        } else if code.len() > MAX_CODE_LEN || !printable {
            violations.add("code", Violation::OtpFormat);
        }
        violations.into_result(|| ConfirmPayinCommand {
            reference: reference.expect("no violation means a reference"),
            code: code.to_owned(),
        })
    }

    pub fn fingerprint(&self) -> String {
        fingerprint("confirm", self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_is_1_to_32_printable_characters_and_never_shown() {
        let command = ConfirmPayinCommand::parse("order-1", "123456").unwrap();
        assert!(!format!("{command:?}").contains("123456"));
        assert_ne!(
            command.fingerprint(),
            ConfirmPayinCommand::parse("order-1", "654321")
                .unwrap()
                .fingerprint()
        );
        for (reference, code, fields) in [
            ("order-1", "", vec!["code"]),
            ("order-1", "12 34", vec!["code"]),
            ("order-1", "1234\n", vec!["code"]),
            ("order-1", &"9".repeat(33), vec!["code"]),
            ("", "1234", vec!["reference"]),
        ] {
            let refused = ConfirmPayinCommand::parse(reference, code).unwrap_err();
            let named: Vec<_> = refused.0.iter().map(|v| v.field).collect();
            assert_eq!(named, fields, "{reference:?} {code:?}");
        }
    }
}
