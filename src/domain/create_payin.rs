//! CreatePayin, validated.

use super::country::Countries;
use super::fingerprint::fingerprint;
use super::operator::Operator;
use super::phone::PhoneNumber;
use super::reference::Reference;
use super::violations::{Violation, Violations, check_optional_text};
use serde::Serialize;

pub const MAX_AMOUNT: i64 = 1_000_000_000;
const MAX_NAME_CHARS: usize = 100;

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
    /// The provider the caller asked for by name; `None`: routed by country. Not serialized
    /// when absent, so that requests without it keep the fingerprints they always had.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operator: Option<Operator>,
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
    /// The requested provider's name, or empty (the proto's enum, read by the API layer).
    pub provider: &'a str,
    pub operator: &'a str,
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
        let operator = match input.operator {
            "" => None,
            raw => Operator::parse(raw).or_else(|| {
                violations.add("operator", Violation::Operator);
                None
            }),
        };
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
            provider: Some(input.provider.to_owned()).filter(|p| !p.is_empty()),
            operator,
        })
    }

    /// SHA-256 of the canonical request: same command, same fingerprint.
    pub fn fingerprint(&self) -> String {
        fingerprint("create", self)
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

#[cfg(test)]
mod tests;
