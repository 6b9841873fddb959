use super::*;
use crate::domain::RefundCommand;

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
        provider: "",
        operator: "",
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
        provider: "",
        operator: "airtel",
    };
    assert_eq!(
        fields_of(&input),
        vec![
            "reference",
            "amount",
            "msisdn",
            "customer_name",
            "country",
            "success_url",
            "operator"
        ]
    );
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
    // The provider and the operator are part of the request (§9)…
    for (provider, operator) in [("hub2", ""), ("", "orange"), ("hub2", "orange")] {
        let routed = CreatePayinInput {
            provider,
            operator,
            ..valid()
        };
        let d = CreatePayinCommand::parse(&routed, &Countries::default()).unwrap();
        assert_ne!(
            a.fingerprint(),
            d.fingerprint(),
            "{provider:?} {operator:?}"
        );
    }
    // …and a request without them keeps the fingerprint it had before they existed, so
    // that records kept across an upgrade still replay.
    assert_eq!(a.fingerprint(), FINGERPRINT_BEFORE_PROVIDERS);
}

/// SHA-256 of `create`, NUL, and the canonical JSON of `valid()` as it was serialized before
/// the provider fields existed (computed independently of this code).
const FINGERPRINT_BEFORE_PROVIDERS: &str =
    "2f76d88af995767222ad529ae57186849970c62a2289f1fae152e6ba044435bb";
