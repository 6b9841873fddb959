//! Request validation (contract §2): `CreatePayinCommand::parse`, `RefundCommand::parse` and
//! the idempotency key never panic, and every accepted command satisfies the contract's rules.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use payments_gateway::domain::{
    Countries, CreatePayinCommand, IdempotencyKey, Language, RefundCommand, Violations,
};
use payments_gateway::domain::{CreatePayinInput, MAX_AMOUNT, parse_lookup_reference};

#[derive(Debug, Arbitrary)]
struct Input {
    reference: String,
    amount: Amount,
    msisdn: String,
    /// When set, the msisdn is `+` and at most 15 of these digits instead (mostly valid
    /// E.164), so that accepted commands are reached often.
    msisdn_digits: Option<u64>,
    customer_name: String,
    /// Index into the default countries, or an arbitrary country when out of range.
    country_choice: u8,
    country: String,
    currency: String,
    account_id: String,
    success_url: String,
    failure_url: String,
    /// A country table, used instead of the default when it parses.
    countries: Option<String>,
    reason: String,
    external_reference: String,
    refund_amount: i64,
    payin_amount: i64,
    key_field: String,
    key_metadata: Option<String>,
}

/// Any amount, or one near the accepted range (where the boundaries are).
#[derive(Debug, Arbitrary)]
enum Amount {
    Any(i64),
    Near(u32),
}

const DEFAULT_COUNTRIES: [&str; 8] = ["CI", "SN", "TG", "BJ", "ML", "BF", "NE", "CM"];

fuzz_target!(|input: Input| {
    let countries = input
        .countries
        .as_deref()
        .and_then(|spec| Countries::parse(spec).ok())
        .unwrap_or_default();
    let country = DEFAULT_COUNTRIES
        .get(usize::from(input.country_choice))
        .copied()
        .unwrap_or(&input.country);
    let msisdn = match input.msisdn_digits {
        Some(digits) => format!("+{}", digits % 1_000_000_000_000_000),
        None => input.msisdn.clone(),
    };
    let amount = match input.amount {
        Amount::Any(amount) => amount,
        Amount::Near(amount) => i64::from(amount) - 1,
    };
    let create = CreatePayinInput {
        reference: &input.reference,
        amount,
        msisdn: &msisdn,
        customer_name: &input.customer_name,
        country,
        currency: &input.currency,
        account_id: &input.account_id,
        success_url: &input.success_url,
        failure_url: &input.failure_url,
        provider: "",
        operator: "",
    };
    match CreatePayinCommand::parse(&create, &countries) {
        Ok(command) => {
            assert_reference(command.reference.as_str());
            assert!((1..=MAX_AMOUNT).contains(&command.amount));
            let msisdn = command.msisdn.expose();
            let digits = msisdn.strip_prefix('+').expect("E.164 starts with +");
            assert!((8..=15).contains(&digits.len()), "{msisdn}");
            assert!(digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0'));
            let name = &command.customer_name;
            assert_eq!(name, input.customer_name.trim());
            assert!((1..=100).contains(&name.chars().count()));
            assert!(!name.chars().any(char::is_control));
            assert_eq!(
                Some(command.currency.as_str()),
                countries.currency_of(&command.country)
            );
            assert!(input.currency.is_empty() || input.currency == command.currency);
            assert!(command.account_id.chars().count() <= 255);
            assert!(!command.account_id.chars().any(char::is_control));
            for url in [&command.success_url, &command.failure_url] {
                assert!(
                    url.is_empty() || url.starts_with("http://") || url.starts_with("https://"),
                    "{url:?}"
                );
            }
            assert_eq!(command.fingerprint().len(), 64);
        }
        Err(violations) => describe_all(&violations),
    }

    match RefundCommand::parse(
        &input.reference,
        &input.reason,
        &input.external_reference,
        input.refund_amount,
    ) {
        Ok(command) => {
            assert_reference(command.reference.as_str());
            assert_eq!(command.reason, input.reason.trim());
            assert!((1..=255).contains(&command.reason.chars().count()));
            assert!(command.external_reference.chars().count() <= 255);
            assert!(!command.external_reference.chars().any(char::is_control));
            assert!(command.amount >= 0);
            assert_eq!(command.fingerprint().len(), 64);
            if input.payin_amount >= 1 {
                match command.resolve_amount(input.payin_amount) {
                    Ok((amount, full)) => {
                        assert!((1..=input.payin_amount).contains(&amount));
                        assert_eq!(full, amount == input.payin_amount);
                    }
                    Err(violations) => {
                        assert!(command.amount > input.payin_amount);
                        describe_all(&violations);
                    }
                }
            }
        }
        Err(violations) => describe_all(&violations),
    }

    match parse_lookup_reference(&input.reference) {
        Ok(reference) => assert_reference(reference.as_str()),
        Err(violations) => describe_all(&violations),
    }

    if let Ok(key) =
        IdempotencyKey::from_field_or_metadata(&input.key_field, input.key_metadata.as_deref())
    {
        let key = key.as_str();
        assert!((1..=255).contains(&key.len()));
        assert!(key.bytes().all(|b| (0x20..=0x7e).contains(&b)));
    }
});

fn assert_reference(reference: &str) {
    assert!((1..=64).contains(&reference.len()), "{reference:?}");
    assert!(
        reference
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')),
        "{reference:?}"
    );
    assert!(!reference.bytes().all(|b| b == b'.'), "{reference:?}");
}

fn describe_all(violations: &Violations) {
    assert!(!violations.0.is_empty());
    for v in &violations.0 {
        assert!(!v.violation.describe(Language::En).is_empty());
        assert!(!v.violation.describe(Language::Fr).is_empty());
    }
}
