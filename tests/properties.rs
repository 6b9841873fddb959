//! Properties of request validation and canonicalisation (contract §2 and §3): the fingerprint
//! of a request ignores what canonicalisation removes (surrounding whitespace in the name and the
//! reason, an explicit currency equal to the country's) and changes with anything else, and
//! validation accepts only what the contract allows, whatever the input.

use payments_gateway::domain::{Countries, CreatePayinCommand, RefundCommand};
use payments_gateway::domain::{CreatePayinInput, MAX_AMOUNT};
use proptest::prelude::*;

/// Whitespace that `str::trim` removes, ASCII and otherwise.
const SPACES: &[char] = &[
    ' ', '\t', '\n', '\r', '\u{0B}', '\u{0C}', '\u{A0}', '\u{2003}', '\u{3000}',
];

fn padding() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(SPACES), 0..4).prop_map(String::from_iter)
}

/// A valid reference: 1–64 of `A-Za-z0-9-_.`, not dots alone.
fn reference() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
}

fn msisdn() -> impl Strategy<Value = String> {
    "\\+[1-9][0-9]{7,14}"
}

/// A valid trimmed name: 1–100 chars, no control characters, no surrounding whitespace.
fn name() -> impl Strategy<Value = String> {
    "[A-Za-zÀ-ÿ'][A-Za-zÀ-ÿ' -]{0,98}[A-Za-zÀ-ÿ']|[A-Za-zÀ-ÿ]"
}

fn country() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["CI", "SN", "TG", "BJ", "ML", "BF", "NE", "CM"])
}

fn optional_text() -> impl Strategy<Value = String> {
    "|[A-Za-z0-9_-]{1,40}"
}

fn optional_url() -> impl Strategy<Value = String> {
    "|https?://[a-z]{1,12}\\.example(/[a-z0-9]{0,10}){0,2}"
}

#[derive(Debug, Clone)]
struct Create {
    reference: String,
    amount: i64,
    msisdn: String,
    customer_name: String,
    country: &'static str,
    account_id: String,
    success_url: String,
    failure_url: String,
}

fn create() -> impl Strategy<Value = Create> {
    (
        reference(),
        1..=MAX_AMOUNT,
        msisdn(),
        name(),
        country(),
        optional_text(),
        optional_url(),
        optional_url(),
    )
        .prop_map(
            |(
                reference,
                amount,
                msisdn,
                customer_name,
                country,
                account_id,
                success_url,
                failure_url,
            )| Create {
                reference,
                amount,
                msisdn,
                customer_name,
                country,
                account_id,
                success_url,
                failure_url,
            },
        )
}

impl Create {
    fn parse_with(&self, customer_name: &str, currency: &str) -> CreatePayinCommand {
        let input = CreatePayinInput {
            reference: &self.reference,
            amount: self.amount,
            msisdn: &self.msisdn,
            customer_name,
            country: self.country,
            currency,
            account_id: &self.account_id,
            success_url: &self.success_url,
            failure_url: &self.failure_url,
            provider: "",
            operator: "",
        };
        CreatePayinCommand::parse(&input, &Countries::default())
            .unwrap_or_else(|v| panic!("{self:?} should be valid: {v:?}"))
    }

    fn fingerprint(&self) -> String {
        self.parse_with(&self.customer_name, "").fingerprint()
    }
}

/// One meaningful change to a valid CreatePayin, keeping it valid.
#[derive(Debug, Clone)]
enum CreateChange {
    Reference(String),
    Amount(i64),
    Msisdn(String),
    Name(String),
    Country(&'static str),
    AccountId(String),
    SuccessUrl(String),
    FailureUrl(String),
}

fn create_change() -> impl Strategy<Value = CreateChange> {
    prop_oneof![
        reference().prop_map(CreateChange::Reference),
        (1..=MAX_AMOUNT).prop_map(CreateChange::Amount),
        msisdn().prop_map(CreateChange::Msisdn),
        name().prop_map(CreateChange::Name),
        country().prop_map(CreateChange::Country),
        optional_text().prop_map(CreateChange::AccountId),
        optional_url().prop_map(CreateChange::SuccessUrl),
        optional_url().prop_map(CreateChange::FailureUrl),
    ]
}

impl CreateChange {
    /// The changed request, or `None` when the change leaves the field as it was.
    fn apply(self, base: &Create) -> Option<Create> {
        let mut changed = base.clone();
        let same = match self {
            Self::Reference(v) => same_then_set(&mut changed.reference, v),
            Self::Amount(v) => same_then_set(&mut changed.amount, v),
            Self::Msisdn(v) => same_then_set(&mut changed.msisdn, v),
            Self::Name(v) => same_then_set(&mut changed.customer_name, v),
            Self::Country(v) => same_then_set(&mut changed.country, v),
            Self::AccountId(v) => same_then_set(&mut changed.account_id, v),
            Self::SuccessUrl(v) => same_then_set(&mut changed.success_url, v),
            Self::FailureUrl(v) => same_then_set(&mut changed.failure_url, v),
        };
        (!same).then_some(changed)
    }
}

fn same_then_set<T: PartialEq>(field: &mut T, value: T) -> bool {
    let same = *field == value;
    *field = value;
    same
}

#[derive(Debug, Clone)]
struct Refund {
    reference: String,
    reason: String,
    external_reference: String,
    amount: i64,
}

/// A valid trimmed reason: 1–255 chars, no surrounding whitespace.
fn reason() -> impl Strategy<Value = String> {
    "[A-Za-zé0-9][A-Za-zé0-9 ,.'-]{0,200}[A-Za-zé0-9.]|[A-Za-z]"
}

fn refund() -> impl Strategy<Value = Refund> {
    (reference(), reason(), optional_text(), 0..=MAX_AMOUNT).prop_map(
        |(reference, reason, external_reference, amount)| Refund {
            reference,
            reason,
            external_reference,
            amount,
        },
    )
}

impl Refund {
    fn parse_with(&self, reason: &str) -> RefundCommand {
        RefundCommand::parse(
            &self.reference,
            reason,
            &self.external_reference,
            self.amount,
        )
        .unwrap_or_else(|v| panic!("{self:?} should be valid: {v:?}"))
    }
}

#[derive(Debug, Clone)]
enum RefundChange {
    Reference(String),
    Reason(String),
    ExternalReference(String),
    Amount(i64),
}

fn refund_change() -> impl Strategy<Value = RefundChange> {
    prop_oneof![
        reference().prop_map(RefundChange::Reference),
        reason().prop_map(RefundChange::Reason),
        optional_text().prop_map(RefundChange::ExternalReference),
        (0..=MAX_AMOUNT).prop_map(RefundChange::Amount),
    ]
}

impl RefundChange {
    fn apply(self, base: &Refund) -> Option<Refund> {
        let mut changed = base.clone();
        let same = match self {
            Self::Reference(v) => same_then_set(&mut changed.reference, v),
            Self::Reason(v) => same_then_set(&mut changed.reason, v),
            Self::ExternalReference(v) => same_then_set(&mut changed.external_reference, v),
            Self::Amount(v) => same_then_set(&mut changed.amount, v),
        };
        (!same).then_some(changed)
    }
}

/// Arbitrary strings, biased towards the edges of the rules.
fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[ -~]{0,70}",
        "\\+[0-9]{0,17}",
        "\\s{0,3}[^\\x00-\\x1f]{0,102}\\s{0,3}",
        "[A-Z]{0,3}",
        "[A-Za-z0-9._-]{0,66}",
        Just(String::new()),
    ]
}

fn any_amount() -> impl Strategy<Value = i64> {
    prop_oneof![
        any::<i64>(),
        -2..=2i64,
        MAX_AMOUNT - 2..=MAX_AMOUNT + 2,
        Just(i64::MIN),
        Just(i64::MAX),
    ]
}

fn is_valid_reference(r: &str) -> bool {
    (1..=64).contains(&r.len())
        && r.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn is_e164(m: &str) -> bool {
    m.strip_prefix('+').is_some_and(|d| {
        (8..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()) && !d.starts_with('0')
    })
}

proptest! {
    #[test]
    fn create_fingerprint_ignores_padding_of_the_name_and_an_explicit_currency(
        base in create(),
        before in padding(),
        after in padding(),
        explicit_currency in any::<bool>(),
    ) {
        let padded = format!("{before}{}{after}", base.customer_name);
        let currency = if explicit_currency {
            Countries::default().currency_of(base.country).unwrap().to_owned()
        } else {
            String::new()
        };
        let command = base.parse_with(&padded, &currency);
        prop_assert_eq!(&command.customer_name, &base.customer_name);
        prop_assert_eq!(command.fingerprint(), base.fingerprint());
    }

    #[test]
    fn create_fingerprint_changes_with_any_meaningful_change(
        base in create(),
        change in create_change(),
    ) {
        if let Some(changed) = change.clone().apply(&base) {
            prop_assert_ne!(base.fingerprint(), changed.fingerprint(), "{:?}", change);
        }
    }

    #[test]
    fn refund_fingerprint_ignores_padding_of_the_reason(
        base in refund(),
        before in padding(),
        after in padding(),
    ) {
        let padded = base.parse_with(&format!("{before}{}{after}", base.reason));
        let plain = base.parse_with(&base.reason);
        prop_assert_eq!(&padded.reason, &base.reason);
        prop_assert_eq!(padded.fingerprint(), plain.fingerprint());
    }

    #[test]
    fn refund_fingerprint_changes_with_any_meaningful_change(
        base in refund(),
        change in refund_change(),
    ) {
        if let Some(changed) = change.clone().apply(&base) {
            prop_assert_ne!(
                base.parse_with(&base.reason).fingerprint(),
                changed.parse_with(&changed.reason).fingerprint(),
                "{:?}", change
            );
        }
    }

    #[test]
    fn create_and_refund_fingerprints_never_collide(c in create(), r in refund()) {
        prop_assert_ne!(c.fingerprint(), r.parse_with(&r.reason).fingerprint());
    }

    #[test]
    fn create_validation_accepts_only_what_the_contract_allows(
        reference in prop_oneof![1 => any_text(), 5 => reference()],
        amount in prop_oneof![1 => any_amount(), 5 => 1..=MAX_AMOUNT],
        msisdn in prop_oneof![1 => any_text(), 5 => msisdn()],
        customer_name in prop_oneof![
            1 => any_text(),
            5 => (padding(), name(), padding()).prop_map(|(a, n, b)| format!("{a}{n}{b}")),
        ],
        country in prop_oneof![1 => any_text(), 5 => country().prop_map(str::to_owned)],
        currency in prop_oneof![
            1 => any_text(),
            1 => Just("XOF".to_owned()),
            1 => Just("XAF".to_owned()),
            5 => Just(String::new()),
        ],
        account_id in prop_oneof![1 => any_text(), 5 => optional_text()],
        success_url in prop_oneof![1 => any_text(), 5 => optional_url()],
        failure_url in prop_oneof![1 => any_text(), 5 => optional_url()],
    ) {
        let countries = Countries::default();
        let input = CreatePayinInput {
            reference: &reference,
            amount,
            msisdn: &msisdn,
            customer_name: &customer_name,
            country: &country,
            currency: &currency,
            account_id: &account_id,
            success_url: &success_url,
            failure_url: &failure_url,
            provider: "",
            operator: "",
        };
        match CreatePayinCommand::parse(&input, &countries) {
            Ok(command) => {
                prop_assert!(is_valid_reference(command.reference.as_str()));
                prop_assert!(!command.reference.as_str().bytes().all(|b| b == b'.'));
                prop_assert!((1..=MAX_AMOUNT).contains(&command.amount));
                prop_assert!(is_e164(command.msisdn.expose()));
                let name = &command.customer_name;
                prop_assert_eq!(name.as_str(), customer_name.trim());
                prop_assert!((1..=100).contains(&name.chars().count()));
                prop_assert!(!name.chars().any(char::is_control));
                let expected_currency = countries.currency_of(&command.country);
                prop_assert_eq!(Some(command.currency.as_str()), expected_currency);
                prop_assert!(currency.is_empty() || currency == command.currency);
                prop_assert!(command.account_id.chars().count() <= 255);
                prop_assert!(!command.account_id.chars().any(char::is_control));
                for url in [&command.success_url, &command.failure_url] {
                    prop_assert!(
                        url.is_empty() || url.starts_with("http://") || url.starts_with("https://"),
                        "{}", url
                    );
                }
                prop_assert_eq!(command.fingerprint().len(), 64);
            }
            Err(violations) => prop_assert!(!violations.0.is_empty()),
        }
    }

    #[test]
    fn refund_validation_accepts_only_what_the_contract_allows(
        reference in prop_oneof![1 => any_text(), 5 => reference()],
        reason in prop_oneof![
            1 => any_text(),
            5 => (padding(), reason(), padding()).prop_map(|(a, r, b)| format!("{a}{r}{b}")),
        ],
        external_reference in prop_oneof![1 => any_text(), 5 => optional_text()],
        amount in prop_oneof![1 => any_amount(), 5 => 0..=MAX_AMOUNT],
    ) {
        match RefundCommand::parse(&reference, &reason, &external_reference, amount) {
            Ok(command) => {
                prop_assert!(is_valid_reference(command.reference.as_str()));
                prop_assert_eq!(command.reason.as_str(), reason.trim());
                prop_assert!((1..=255).contains(&command.reason.chars().count()));
                prop_assert!(command.external_reference.chars().count() <= 255);
                prop_assert!(!command.external_reference.chars().any(char::is_control));
                prop_assert!(command.amount >= 0);
                prop_assert_eq!(command.fingerprint().len(), 64);
            }
            Err(violations) => prop_assert!(!violations.0.is_empty()),
        }
    }
}
