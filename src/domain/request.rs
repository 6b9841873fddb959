//! Validated commands: every rule of contract §2, all violations of a request reported together.

use super::country::Countries;
use super::lang::Language;
use super::phone::PhoneNumber;
use serde::Serialize;
use sha2::{Digest, Sha256};

pub const MAX_AMOUNT: i64 = 1_000_000_000;
const MAX_REFERENCE_LEN: usize = 64;
const MAX_NAME_CHARS: usize = 100;
const MAX_TEXT_CHARS: usize = 255;
pub const IDEMPOTENCY_METADATA: &str = "x-idempotency-key";

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
    CountryUnsupported { supported: String },
    CurrencyMismatch { expected: String },
    Url,
    TextTooLong { max: usize },
    IdempotencyKeyFormat,
    IdempotencyKeyMismatch,
    RefundAmountNegative,
    RefundAmountAbovePayin { payin_amount: i64 },
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
    fn add(&mut self, field: &'static str, violation: Violation) {
        self.0.push(FieldViolation { field, violation });
    }

    pub fn single(field: &'static str, violation: Violation) -> Self {
        let mut all = Self::default();
        all.add(field, violation);
        all
    }

    fn into_result<T>(self, value: impl FnOnce() -> T) -> Result<T, Violations> {
        if self.0.is_empty() {
            Ok(value())
        } else {
            Err(self)
        }
    }
}

/// A merchant payin reference: 1–64 chars of `A-Za-z0-9-_.`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Reference(String);

impl Reference {
    pub fn parse(raw: &str) -> Result<Self, Violation> {
        if raw.is_empty() {
            return Err(Violation::Required);
        }
        let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
        // A reference of dots alone would read as `.` or `..` in a Novasend URL path.
        let only_dots = raw.bytes().all(|b| b == b'.');
        if raw.len() > MAX_REFERENCE_LEN || !raw.bytes().all(allowed) || only_dots {
            return Err(Violation::ReferenceFormat);
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The caller's idempotency key: 1–255 printable ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Takes the key from the request field or the metadata: one is needed, and both must
    /// agree when both are sent.
    pub fn from_field_or_metadata(field: &str, metadata: Option<&str>) -> Result<Self, Violation> {
        let raw = match (field, metadata) {
            ("", None) => return Err(Violation::Required),
            ("", Some(meta)) => meta,
            (field, None) => field,
            (field, Some(meta)) if field == meta => field,
            (_, Some(_)) => return Err(Violation::IdempotencyKeyMismatch),
        };
        let printable = raw.bytes().all(|b| (0x20..=0x7e).contains(&b));
        if raw.is_empty() || raw.len() > MAX_TEXT_CHARS || !printable {
            return Err(Violation::IdempotencyKeyFormat);
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A validated CreatePayin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CreatePayinCommand {
    pub reference: Reference,
    pub amount: i64,
    pub msisdn: PhoneNumber,
    pub customer_name: String,
    pub country: String,
    pub currency: String,
    pub account_id: String,
    pub success_url: String,
    pub failure_url: String,
}

/// The raw fields of a CreatePayin, as the caller sent them.
pub struct CreatePayinInput<'a> {
    pub reference: &'a str,
    pub amount: i64,
    pub msisdn: &'a str,
    pub customer_name: &'a str,
    pub country: &'a str,
    pub currency: &'a str,
    pub account_id: &'a str,
    pub success_url: &'a str,
    pub failure_url: &'a str,
}

impl CreatePayinCommand {
    pub fn parse(input: &CreatePayinInput<'_>, countries: &Countries) -> Result<Self, Violations> {
        let mut violations = Violations::default();
        let reference = Reference::parse(input.reference)
            .map_err(|v| violations.add("reference", v))
            .ok();
        if !(1..=MAX_AMOUNT).contains(&input.amount) {
            violations.add("amount", Violation::AmountRange);
        }
        let msisdn = match input.msisdn {
            "" => {
                violations.add("msisdn", Violation::Required);
                None
            }
            raw => PhoneNumber::parse_e164(raw).or_else(|| {
                violations.add("msisdn", Violation::Msisdn);
                None
            }),
        };
        let customer_name = input.customer_name.trim();
        if customer_name.is_empty() && input.customer_name.is_empty() {
            violations.add("customer_name", Violation::Required);
        } else if customer_name.is_empty() || customer_name.chars().count() > MAX_NAME_CHARS {
            violations.add("customer_name", Violation::CustomerNameLength);
        } else if customer_name.chars().any(char::is_control) {
            violations.add("customer_name", Violation::ControlCharacters);
        }
        let currency = match input.country {
            "" => {
                violations.add("country", Violation::Required);
                None
            }
            c if c.len() != 2 || !c.bytes().all(|b| b.is_ascii_uppercase()) => {
                violations.add("country", Violation::CountryFormat);
                None
            }
            c => countries.currency_of(c).or_else(|| {
                let supported = countries.codes().collect::<Vec<_>>().join(", ");
                violations.add("country", Violation::CountryUnsupported { supported });
                None
            }),
        };
        if let Some(expected) = currency
            && !input.currency.is_empty()
            && input.currency != expected
        {
            violations.add(
                "currency",
                Violation::CurrencyMismatch {
                    expected: expected.to_owned(),
                },
            );
        }
        check_optional_text(&mut violations, "account_id", input.account_id);
        let [success_url, failure_url] = [
            ("success_url", input.success_url),
            ("failure_url", input.failure_url),
        ]
        .map(|(field, raw)| match raw {
            "" => String::new(),
            raw => absolute_http_url(raw).unwrap_or_else(|| {
                violations.add(field, Violation::Url);
                String::new()
            }),
        });
        violations.into_result(|| CreatePayinCommand {
            reference: reference.expect("no violation means a reference"),
            amount: input.amount,
            msisdn: msisdn.expect("no violation means a msisdn"),
            customer_name: customer_name.to_owned(),
            country: input.country.to_owned(),
            currency: currency.expect("no violation means a currency").to_owned(),
            account_id: input.account_id.to_owned(),
            success_url,
            failure_url,
        })
    }

    /// SHA-256 of the canonical request: same command, same fingerprint.
    pub fn fingerprint(&self) -> String {
        fingerprint("create", self)
    }
}

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

/// Validates the reference of GetPayin and StreamPayinUpdates.
pub fn parse_lookup_reference(raw: &str) -> Result<Reference, Violations> {
    Reference::parse(raw).map_err(|v| Violations::single("reference", v))
}

fn check_optional_text(violations: &mut Violations, field: &'static str, raw: &str) {
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

/// The URL as it was validated, serialized by the parser: what is checked is what is sent.
fn absolute_http_url(raw: &str) -> Option<String> {
    url::Url::parse(raw)
        .ok()
        .filter(|u| {
            matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty())
        })
        .map(String::from)
}

fn fingerprint(operation: &str, command: &impl Serialize) -> String {
    let canonical = serde_json::to_vec(command).expect("commands serialize");
    let mut hasher = Sha256::new();
    hasher.update(operation.as_bytes());
    hasher.update([0]);
    hasher.update(canonical);
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> CreatePayinInput<'static> {
        CreatePayinInput {
            reference: "order-42_a.b",
            amount: 300,
            msisdn: "+2250700000042",
            customer_name: "  Awa Koné  ",
            country: "CI",
            currency: "",
            account_id: "",
            success_url: "",
            failure_url: "",
        }
    }

    fn fields_of(input: &CreatePayinInput<'_>) -> Vec<&'static str> {
        match CreatePayinCommand::parse(input, &Countries::default()) {
            Ok(_) => vec![],
            Err(v) => v.0.iter().map(|v| v.field).collect(),
        }
    }

    #[test]
    fn accepts_a_valid_request_and_trims_the_name() {
        let command = CreatePayinCommand::parse(&valid(), &Countries::default()).unwrap();
        assert_eq!(command.customer_name, "Awa Koné");
        assert_eq!(command.currency, "XOF");
        let cm = CreatePayinInput {
            country: "CM",
            currency: "XAF",
            ..valid()
        };
        assert_eq!(
            CreatePayinCommand::parse(&cm, &Countries::default())
                .unwrap()
                .currency,
            "XAF"
        );
    }

    #[test]
    fn each_rule_names_its_field() {
        let long_ref = "a".repeat(65);
        let long_name = "é".repeat(101);
        let name_100 = "é".repeat(100);
        let cases: Vec<(CreatePayinInput<'_>, Vec<&str>)> = vec![
            (
                CreatePayinInput {
                    reference: "",
                    ..valid()
                },
                vec!["reference"],
            ),
            (
                CreatePayinInput {
                    reference: &long_ref,
                    ..valid()
                },
                vec!["reference"],
            ),
            (
                CreatePayinInput {
                    reference: "has space",
                    ..valid()
                },
                vec!["reference"],
            ),
            (
                CreatePayinInput {
                    reference: "a/b",
                    ..valid()
                },
                vec!["reference"],
            ),
            (
                CreatePayinInput {
                    reference: "..",
                    ..valid()
                },
                vec!["reference"],
            ),
            (
                CreatePayinInput {
                    reference: "..a",
                    ..valid()
                },
                vec![],
            ),
            (
                CreatePayinInput {
                    amount: 0,
                    ..valid()
                },
                vec!["amount"],
            ),
            (
                CreatePayinInput {
                    amount: -5,
                    ..valid()
                },
                vec!["amount"],
            ),
            (
                CreatePayinInput {
                    amount: MAX_AMOUNT + 1,
                    ..valid()
                },
                vec!["amount"],
            ),
            (
                CreatePayinInput {
                    amount: MAX_AMOUNT,
                    ..valid()
                },
                vec![],
            ),
            (
                CreatePayinInput {
                    amount: 1,
                    ..valid()
                },
                vec![],
            ),
            (
                CreatePayinInput {
                    msisdn: "",
                    ..valid()
                },
                vec!["msisdn"],
            ),
            (
                CreatePayinInput {
                    msisdn: "0700000042",
                    ..valid()
                },
                vec!["msisdn"],
            ),
            (
                CreatePayinInput {
                    msisdn: "+0700000042",
                    ..valid()
                },
                vec!["msisdn"],
            ),
            (
                CreatePayinInput {
                    customer_name: "",
                    ..valid()
                },
                vec!["customer_name"],
            ),
            (
                CreatePayinInput {
                    customer_name: "   ",
                    ..valid()
                },
                vec!["customer_name"],
            ),
            (
                CreatePayinInput {
                    customer_name: &long_name,
                    ..valid()
                },
                vec!["customer_name"],
            ),
            (
                CreatePayinInput {
                    customer_name: &name_100,
                    ..valid()
                },
                vec![],
            ),
            (
                CreatePayinInput {
                    customer_name: "Awa\u{0007}",
                    ..valid()
                },
                vec!["customer_name"],
            ),
            (
                CreatePayinInput {
                    customer_name: "Awa\nKoné",
                    ..valid()
                },
                vec!["customer_name"],
            ),
            (
                CreatePayinInput {
                    country: "",
                    ..valid()
                },
                vec!["country"],
            ),
            (
                CreatePayinInput {
                    country: "ci",
                    ..valid()
                },
                vec!["country"],
            ),
            (
                CreatePayinInput {
                    country: "CIV",
                    ..valid()
                },
                vec!["country"],
            ),
            (
                CreatePayinInput {
                    country: "GH",
                    ..valid()
                },
                vec!["country"],
            ),
            (
                CreatePayinInput {
                    currency: "XAF",
                    ..valid()
                },
                vec!["currency"],
            ),
            (
                CreatePayinInput {
                    currency: "xof",
                    ..valid()
                },
                vec!["currency"],
            ),
            (
                CreatePayinInput {
                    currency: "XOF",
                    ..valid()
                },
                vec![],
            ),
            (
                CreatePayinInput {
                    success_url: "ftp://x/y",
                    ..valid()
                },
                vec!["success_url"],
            ),
            (
                CreatePayinInput {
                    success_url: "/relative",
                    ..valid()
                },
                vec!["success_url"],
            ),
            (
                CreatePayinInput {
                    failure_url: "not a url",
                    ..valid()
                },
                vec!["failure_url"],
            ),
            (
                CreatePayinInput {
                    success_url: "https://shop.example/ok",
                    failure_url: "http://shop.example/ko?x=1",
                    ..valid()
                },
                vec![],
            ),
            (
                CreatePayinInput {
                    account_id: "acc\u{0000}",
                    ..valid()
                },
                vec!["account_id"],
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(
                fields_of(&input),
                expected,
                "reference={:?} amount={} name={:?} country={:?}",
                input.reference,
                input.amount,
                input.customer_name,
                input.country
            );
        }
    }

    #[test]
    fn reports_every_violation_at_once() {
        let input = CreatePayinInput {
            reference: "",
            amount: 0,
            msisdn: "123",
            customer_name: "",
            country: "XX",
            currency: "EUR",
            account_id: "",
            success_url: "nope",
            failure_url: "",
        };
        assert_eq!(
            fields_of(&input),
            vec![
                "reference",
                "amount",
                "msisdn",
                "customer_name",
                "country",
                "success_url"
            ]
        );
    }

    #[test]
    fn idempotency_key_from_field_or_metadata() {
        use IdempotencyKey as K;
        assert_eq!(
            K::from_field_or_metadata("", None),
            Err(Violation::Required)
        );
        assert_eq!(K::from_field_or_metadata("a", None).unwrap().as_str(), "a");
        assert_eq!(
            K::from_field_or_metadata("", Some("m")).unwrap().as_str(),
            "m"
        );
        assert_eq!(
            K::from_field_or_metadata("k", Some("k")).unwrap().as_str(),
            "k"
        );
        assert_eq!(
            K::from_field_or_metadata("k", Some("other")),
            Err(Violation::IdempotencyKeyMismatch)
        );
        assert_eq!(
            K::from_field_or_metadata(&"k".repeat(256), None),
            Err(Violation::IdempotencyKeyFormat)
        );
        assert!(K::from_field_or_metadata(&"k".repeat(255), None).is_ok());
        assert_eq!(
            K::from_field_or_metadata("clé", None),
            Err(Violation::IdempotencyKeyFormat)
        );
        assert_eq!(
            K::from_field_or_metadata("a\tb", None),
            Err(Violation::IdempotencyKeyFormat)
        );
    }

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

    #[test]
    fn urls_are_sent_as_they_were_validated() {
        let countries = Countries::default();
        let input = CreatePayinInput {
            success_url: "  https://Shop.Example/ok?x=1 ",
            failure_url: "HTTP://shop.example",
            ..valid()
        };
        let command = CreatePayinCommand::parse(&input, &countries).unwrap();
        assert_eq!(command.success_url, "https://shop.example/ok?x=1");
        assert_eq!(command.failure_url, "http://shop.example/");
    }

    #[test]
    fn fingerprint_follows_the_canonical_request() {
        let a = CreatePayinCommand::parse(&valid(), &Countries::default()).unwrap();
        let same_after_trim = CreatePayinInput {
            customer_name: "Awa Koné",
            currency: "XOF",
            ..valid()
        };
        let b = CreatePayinCommand::parse(&same_after_trim, &Countries::default()).unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint());
        let other = CreatePayinInput {
            amount: 301,
            ..valid()
        };
        let c = CreatePayinCommand::parse(&other, &Countries::default()).unwrap();
        assert_ne!(a.fingerprint(), c.fingerprint());
        let refund = RefundCommand::parse("order-42_a.b", "r", "", 0).unwrap();
        assert_eq!(a.fingerprint().len(), 64);
        assert_ne!(refund.fingerprint(), a.fingerprint());
    }

    #[test]
    fn violations_read_in_both_languages() {
        let v = Violation::CurrencyMismatch {
            expected: "XOF".into(),
        };
        assert!(v.describe(Language::En).contains("XOF"));
        assert!(v.describe(Language::Fr).starts_with("doit"));
    }
}
