use crate::common::*;
use payments_gateway::proto::{
    self as pb, CreatePayinRequest, GetPayinRequest, RefundRequest, StreamPayinUpdatesRequest,
};
use tonic::Code;

fn base() -> CreatePayinRequest {
    create_request("order-v", "key-v")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_create_rule_is_an_invalid_argument_that_leaves_no_trace() {
    let mut h = Harness::start().await;
    h.novasend_creates().await;
    let long = "x".repeat(101);
    let cases: Vec<(CreatePayinRequest, &[&str])> = vec![
        (
            CreatePayinRequest {
                reference: "".into(),
                ..base()
            },
            &["reference"],
        ),
        (
            CreatePayinRequest {
                reference: "a".repeat(65),
                ..base()
            },
            &["reference"],
        ),
        (
            CreatePayinRequest {
                reference: "bad ref!".into(),
                ..base()
            },
            &["reference"],
        ),
        (
            CreatePayinRequest {
                amount: 0,
                ..base()
            },
            &["amount"],
        ),
        (
            CreatePayinRequest {
                amount: 1_000_000_001,
                ..base()
            },
            &["amount"],
        ),
        (
            CreatePayinRequest {
                msisdn: "".into(),
                ..base()
            },
            &["msisdn"],
        ),
        (
            CreatePayinRequest {
                msisdn: "2250700000042".into(),
                ..base()
            },
            &["msisdn"],
        ),
        (
            CreatePayinRequest {
                msisdn: "+0250700000042".into(),
                ..base()
            },
            &["msisdn"],
        ),
        (
            CreatePayinRequest {
                msisdn: "+1234567".into(),
                ..base()
            },
            &["msisdn"],
        ),
        (
            CreatePayinRequest {
                customer_name: "".into(),
                ..base()
            },
            &["customer_name"],
        ),
        (
            CreatePayinRequest {
                customer_name: "   ".into(),
                ..base()
            },
            &["customer_name"],
        ),
        (
            CreatePayinRequest {
                customer_name: long.clone(),
                ..base()
            },
            &["customer_name"],
        ),
        (
            CreatePayinRequest {
                customer_name: "Awa\u{1b}[31m".into(),
                ..base()
            },
            &["customer_name"],
        ),
        (
            CreatePayinRequest {
                country: "".into(),
                ..base()
            },
            &["country"],
        ),
        (
            CreatePayinRequest {
                country: "ci".into(),
                ..base()
            },
            &["country"],
        ),
        (
            CreatePayinRequest {
                country: "FR".into(),
                ..base()
            },
            &["country"],
        ),
        (
            CreatePayinRequest {
                currency: "XAF".into(),
                ..base()
            },
            &["currency"],
        ),
        (
            CreatePayinRequest {
                success_url: "shop/ok".into(),
                ..base()
            },
            &["success_url"],
        ),
        (
            CreatePayinRequest {
                failure_url: "javascript:alert(1)".into(),
                ..base()
            },
            &["failure_url"],
        ),
        (
            CreatePayinRequest {
                idempotency_key: "".into(),
                ..base()
            },
            &["idempotency_key"],
        ),
        (
            CreatePayinRequest {
                idempotency_key: "k".repeat(256),
                ..base()
            },
            &["idempotency_key"],
        ),
        (
            CreatePayinRequest {
                reference: "".into(),
                amount: -1,
                msisdn: "nope".into(),
                customer_name: "".into(),
                country: "ZZ".into(),
                idempotency_key: "".into(),
                ..base()
            },
            &[
                "reference",
                "amount",
                "msisdn",
                "customer_name",
                "country",
                "idempotency_key",
            ],
        ),
    ];
    for (request, fields) in cases {
        let status = h.client.create_payin(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert_eq!(violated_fields(&status), fields, "{}", status.message());
        assert!(!status.message().contains("+2250700000042"));
    }
    assert!(
        h.upstream("POST").await.is_empty(),
        "no upstream call for invalid input"
    );
    assert!(h.redis.keys("*").is_empty(), "no record for invalid input");

    // Validation failures are not recorded: the caller fixes the request, same key.
    let fixed = h.client.create_payin(base()).await.unwrap();
    assert_eq!(fixed.get_ref().reference, "order-v");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_follow_accept_language() {
    let mut h = Harness::start().await;
    let bad = CreatePayinRequest {
        amount: 0,
        ..base()
    };
    let english = h.client.create_payin(bad.clone()).await.unwrap_err();
    assert!(
        english
            .message()
            .starts_with("invalid request: amount: must be"),
        "{}",
        english.message()
    );
    let french = h
        .client
        .create_payin(with_metadata(
            bad.clone(),
            &[("accept-language", "fr;q=0.9, en;q=0.5")],
        ))
        .await
        .unwrap_err();
    assert!(
        french.message().starts_with("requête invalide : amount")
            || french.message().starts_with("requête invalide: amount"),
        "{}",
        french.message()
    );
    use tonic_types::StatusExt;
    let description = &french.get_details_bad_request().unwrap().field_violations[0].description;
    assert!(description.starts_with("doit"), "{description}");
    let not_found = h
        .client
        .get_payin(with_metadata(
            GetPayinRequest {
                reference: "nope".into(),
                refresh: false,
            },
            &[("accept-language", "fr")],
        ))
        .await;
    // Unknown to the cache: Novasend is asked, which knows nothing either (wiremock: 404).
    assert_eq!(not_found.unwrap_err().message(), "paiement introuvable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_idempotency_key_comes_from_the_field_or_the_metadata() {
    let mut h = Harness::start().await;
    h.novasend_creates().await;
    let no_field = CreatePayinRequest {
        idempotency_key: "".into(),
        ..base()
    };

    let neither = h.client.create_payin(no_field.clone()).await.unwrap_err();
    assert_eq!(
        (neither.code(), violated_fields(&neither)),
        (Code::InvalidArgument, vec!["idempotency_key".to_owned()])
    );

    let differ = h
        .client
        .create_payin(with_metadata(base(), &[("x-idempotency-key", "other")]))
        .await
        .unwrap_err();
    assert_eq!(
        (differ.code(), violated_fields(&differ)),
        (Code::InvalidArgument, vec!["idempotency_key".to_owned()])
    );
    assert!(h.upstream("POST").await.is_empty());

    let from_metadata = h
        .client
        .create_payin(with_metadata(
            no_field.clone(),
            &[("x-idempotency-key", "key-v")],
        ))
        .await
        .unwrap()
        .into_inner();
    // The same key in the field is the same request: replayed, not created again.
    let from_field = h.client.create_payin(base()).await.unwrap().into_inner();
    let both_equal = h
        .client
        .create_payin(with_metadata(base(), &[("x-idempotency-key", "key-v")]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(from_metadata, from_field);
    assert_eq!(from_field, both_equal);
    assert_eq!(h.upstream("POST").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_and_refunds_validate_their_fields() {
    let mut h = Harness::start().await;
    let get = h
        .client
        .get_payin(GetPayinRequest {
            reference: "".into(),
            refresh: false,
        })
        .await
        .unwrap_err();
    assert_eq!(
        (get.code(), violated_fields(&get)),
        (Code::InvalidArgument, vec!["reference".to_owned()])
    );
    let get = h
        .client
        .get_payin(GetPayinRequest {
            reference: "../etc".into(),
            refresh: true,
        })
        .await
        .unwrap_err();
    assert_eq!(get.code(), Code::InvalidArgument);
    let stream = h
        .client
        .stream_payin_updates(StreamPayinUpdatesRequest {
            reference: "".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(stream.code(), Code::InvalidArgument);

    let refund = h
        .client
        .refund(RefundRequest {
            reference: "".into(),
            reason: "  ".into(),
            external_reference: "e".repeat(256),
            amount: -5,
            idempotency_key: "".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(refund.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&refund),
        vec![
            "reference",
            "reason",
            "external_reference",
            "amount",
            "idempotency_key"
        ]
    );
    let long_reason = h
        .client
        .refund(RefundRequest {
            reference: "r".into(),
            reason: "x".repeat(256),
            idempotency_key: "k".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&long_reason), vec!["reason"]);
    assert!(h.novasend.received_requests().await.unwrap().is_empty());
    assert!(h.redis.keys("*").is_empty());
    let _ = pb::PayinStatus::Pending;
}
