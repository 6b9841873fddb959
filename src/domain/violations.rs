//! Why a request was refused: every rule of contract §2, all violations of a request reported
//! together.

use super::lang::Language;

pub(super) const MAX_TEXT_CHARS: usize = 255;

/// Why a field was refused. Rendered in the caller's language at the API edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    Required,
    ReferenceFormat,
    AmountRange,
    Msisdn,
    CustomerNameLength,
    ControlCharacters,
    CountryFormat,
    CountryUnsupported {
        supported: String,
    },
    CurrencyMismatch {
        expected: String,
    },
    Url,
    TextTooLong {
        max: usize,
    },
    IdempotencyKeyFormat,
    IdempotencyKeyMismatch,
    RefundAmountNegative,
    RefundAmountAbovePayin {
        payin_amount: i64,
    },
    Operator,
    /// `provider` names a provider this service does not have, or has not enabled.
    ProviderNotEnabled {
        enabled: String,
    },
    /// A one-time code: 1 to 32 printable characters, no spaces.
    OtpFormat,
}

impl Violation {
    pub fn describe(&self, language: Language) -> String {
        use Language::{En, Fr};
        match (self, language) {
            (Self::Required, En) => "is required".into(),
            (Self::Required, Fr) => "est obligatoire".into(),
            (Self::ReferenceFormat, En) => {
                "must be 1 to 64 characters among A-Z, a-z, 0-9, '-', '_' and '.', not dots alone".into()
            }
            (Self::ReferenceFormat, Fr) => {
                "doit compter de 1 à 64 caractères parmi A-Z, a-z, 0-9, '-', '_' et '.', pas seulement des points".into()
            }
            (Self::AmountRange, En) => "must be a whole amount between 1 and 1000000000".into(),
            (Self::AmountRange, Fr) => "doit être un montant entier entre 1 et 1000000000".into(),
            (Self::Msisdn, En) => {
                "must be an E.164 number: '+' then 8 to 15 digits, the first not 0".into()
            }
            (Self::Msisdn, Fr) => {
                "doit être un numéro E.164 : '+' puis 8 à 15 chiffres, le premier différent de 0"
                    .into()
            }
            (Self::CustomerNameLength, En) => "must be 1 to 100 characters once trimmed".into(),
            (Self::CustomerNameLength, Fr) => {
                "doit compter de 1 à 100 caractères, espaces de bord retirés".into()
            }
            (Self::ControlCharacters, En) => "must not contain control characters".into(),
            (Self::ControlCharacters, Fr) => "ne doit pas contenir de caractères de contrôle".into(),
            (Self::CountryFormat, En) => {
                "must be an upper-case ISO 3166-1 alpha-2 code such as CI".into()
            }
            (Self::CountryFormat, Fr) => {
                "doit être un code ISO 3166-1 alpha-2 en majuscules, par exemple CI".into()
            }
            (Self::CountryUnsupported { supported }, En) => {
                format!("is not a supported country (supported: {supported})")
            }
            (Self::CountryUnsupported { supported }, Fr) => {
                format!("n'est pas un pays pris en charge (pays pris en charge : {supported})")
            }
            (Self::CurrencyMismatch { expected }, En) => {
                format!("must be the country's currency, {expected}")
            }
            (Self::CurrencyMismatch { expected }, Fr) => {
                format!("doit être la devise du pays, {expected}")
            }
            (Self::Url, En) => "must be an absolute http or https URL".into(),
            (Self::Url, Fr) => "doit être une URL http ou https absolue".into(),
            (Self::TextTooLong { max }, En) => format!("must be at most {max} characters"),
            (Self::TextTooLong { max }, Fr) => format!("doit compter au plus {max} caractères"),
            (Self::IdempotencyKeyFormat, En) => {
                "must be 1 to 255 printable ASCII characters".into()
            }
            (Self::IdempotencyKeyFormat, Fr) => {
                "doit compter de 1 à 255 caractères ASCII imprimables".into()
            }
            (Self::IdempotencyKeyMismatch, En) => {
                "differs from the x-idempotency-key metadata; send one key, or the same in both"
                    .into()
            }
            (Self::IdempotencyKeyMismatch, Fr) => {
                "diffère de la métadonnée x-idempotency-key ; envoyez une seule clé, ou la même aux deux endroits".into()
            }
            (Self::RefundAmountNegative, En) => {
                "must be 0 (full refund) or a positive amount".into()
            }
            (Self::RefundAmountNegative, Fr) => {
                "doit valoir 0 (remboursement total) ou un montant positif".into()
            }
            (Self::RefundAmountAbovePayin { payin_amount }, En) => {
                format!("must not exceed the payin amount, {payin_amount}")
            }
            (Self::RefundAmountAbovePayin { payin_amount }, Fr) => {
                format!("ne doit pas dépasser le montant du paiement, {payin_amount}")
            }
            (Self::Operator, En) => format!("must be one of {}", super::Operator::NAMES),
            (Self::Operator, Fr) => format!("doit être l'un de {}", super::Operator::NAMES),
            (Self::ProviderNotEnabled { enabled }, En) => {
                format!("is not a provider enabled on this service (enabled: {enabled})")
            }
            (Self::ProviderNotEnabled { enabled }, Fr) => {
                format!("n'est pas un fournisseur activé sur ce service (activés : {enabled})")
            }
            (Self::OtpFormat, En) => {
                "must be 1 to 32 printable ASCII characters without spaces".into()
            }
            (Self::OtpFormat, Fr) => {
                "doit compter de 1 à 32 caractères ASCII imprimables, sans espace".into()
            }
        }
    }
}

/// One refused field, named as in the proto (snake_case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: &'static str,
    pub violation: Violation,
}

/// All the violations of one request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Violations(pub Vec<FieldViolation>);

impl Violations {
    pub fn add(&mut self, field: &'static str, violation: Violation) {
        self.0.push(FieldViolation { field, violation });
    }

    pub fn single(field: &'static str, violation: Violation) -> Self {
        let mut all = Self::default();
        all.add(field, violation);
        all
    }

    pub(super) fn into_result<T>(self, value: impl FnOnce() -> T) -> Result<T, Violations> {
        if self.0.is_empty() {
            Ok(value())
        } else {
            Err(self)
        }
    }
}

/// Free text: at most `MAX_TEXT_CHARS` characters, none of them a control character.
pub(super) fn check_optional_text(violations: &mut Violations, field: &'static str, raw: &str) {
    if raw.chars().count() > MAX_TEXT_CHARS {
        violations.add(
            field,
            Violation::TextTooLong {
                max: MAX_TEXT_CHARS,
            },
        );
    } else if raw.chars().any(char::is_control) {
        violations.add(field, Violation::ControlCharacters);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn violations_read_in_both_languages() {
        let v = Violation::CurrencyMismatch {
            expected: "XOF".into(),
        };
        assert!(v.describe(Language::En).contains("XOF"));
        assert!(v.describe(Language::Fr).starts_with("doit"));
    }
}
