//! HUB2 payins through the service against its in-process sandbox (no NOVASEND_BASE_URL, no
//! HUB2_BASE_URL): each operator's next action, the OTP, the payer page, magic endings,
//! signed webhooks during a rotation, faults and the journal's count of HUB2 writes.

use crate::common::*;
use crate::sandbox::statuses_until_final;
use payments_gateway::proto::{self as pb, CreatePayinRequest, GetPayinRequest};
use payments_gateway::provider::WebhookSecrets;
use payments_gateway::sandbox::{JournalPage, SandboxConfig};
use serde_json::json;
use std::time::Duration;
use tonic::Code;

type Client = pb::payments_service_client::PaymentsServiceClient<tonic::transport::Channel>;

/// Quick steps, and payers given time to answer (the expiry is tested on its own).
fn patient_sandbox() -> SandboxConfig {
    SandboxConfig {
        step_delay: Duration::from_millis(100),
        expiry: Duration::from_secs(60),
        ..Default::default()
    }
}

fn hub2_payin(reference: &str, msisdn: &str, operator: &str) -> CreatePayinRequest {
    CreatePayinRequest {
        msisdn: msisdn.into(),
        amount: 1500,
        provider: pb::Provider::Hub2 as i32,
        operator: operator.into(),
        ..create_request(reference, &format!("key-{reference}"))
    }
}

async fn journal(sandbox: &str) -> JournalPage {
    reqwest::get(format!("{sandbox}/_sandbox/journal"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The statuses of the HUB2 writes the sandbox processed for `reference`, by operation.
async fn hub2_writes(sandbox: &str, reference: &str) -> Vec<(String, u16)> {
    journal(sandbox)
        .await
        .entries
        .into_iter()
        .filter(|e| e.operation.starts_with("hub2_"))
        .filter(|e| e.reference == reference || e.payin_reference.as_deref() == Some(reference))
        .map(|e| (e.operation, e.http_status))
        .collect()
}

async fn refreshed(client: &mut Client, reference: &str) -> pb::Payin {
    client
        .get_payin(GetPayinRequest {
            reference: reference.into(),
            refresh: true,
        })
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_operator_gets_its_next_action_and_the_payer_page_answers() {
    let redis = RedisServer::start();
    let app = spawn_with_sandbox(&redis, patient_sandbox()).await;
    let sandbox = app.sandbox_url.clone().unwrap();
    let page_prefix = format!("{sandbox}/hub2/pay/");
    let mut client = app.client().await;
    use pb::NextActionType as N;
    let mut created = Vec::new();
    for (operator, kind) in [
        ("orange", N::Otp),
        ("mtn", N::Ussd),
        ("moov", N::Redirect),
        ("wave", N::Redirect),
    ] {
        let reference = format!("h2-{operator}");
        let payin = client
            .create_payin(hub2_payin(&reference, "+2250700000042", operator))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(payin.provider(), pb::Provider::Hub2);
        assert!(payin.provider_reference.starts_with("pi_"), "{payin:?}");
        assert_eq!(payin.status(), pb::PayinStatus::AwaitingConfirmation);
        assert_eq!(payin.provider_status, "action_required");
        let action = payin.next_action.clone().unwrap();
        assert_eq!(action.r#type(), kind, "{operator}");
        match kind {
            N::Otp => assert!(action.message.contains("123456"), "{}", action.message),
            N::Ussd => {
                assert!(action.message.contains("*133#"), "{}", action.message);
                assert!(action.url.starts_with(&page_prefix), "{}", action.url);
            }
            _ => {
                assert!(action.url.starts_with(&page_prefix), "{}", action.url);
                assert_eq!(payin.payment_url, action.url);
            }
        }
        // One intent, then one attempt: the money step.
        assert_eq!(
            hub2_writes(&sandbox, &reference).await,
            [("hub2_intent".into(), 201), ("hub2_payment".into(), 200)]
        );
        created.push(payin);
    }

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // USSD: the sandbox's page plays the payer's phone.
    let ussd_page = created[1].next_action.clone().unwrap().url;
    let page = http
        .get(&ussd_page)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("**********0042") && !page.contains("+2250700000042"));
    assert!(page.contains("1500 XOF") && page.contains("id=\"accept\""));
    let accepted = http
        .post(format!("{ussd_page}/accept"))
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 303);
    let seen = statuses_until_final(&mut client, "h2-mtn").await;
    assert_eq!(seen.last(), Some(&pb::PayinStatus::Succeeded), "{seen:?}");

    // Redirection, declined: the attempt failed, the payin FAILED with HUB2's failure.
    http.post(format!("{}/decline", created[2].payment_url))
        .send()
        .await
        .unwrap();
    let seen = statuses_until_final(&mut client, "h2-moov").await;
    assert_eq!(seen.last(), Some(&pb::PayinStatus::Failed), "{seen:?}");
    let failed = refreshed(&mut client, "h2-moov").await;
    assert_eq!(failed.failure.unwrap().code, "payment_declined");
    assert_eq!(failed.next_action, None);

    assert_eq!(
        http.get(format!("{page_prefix}nope"))
            .send()
            .await
            .unwrap()
            .status(),
        404,
        "an unknown link"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_s_code_confirms_an_otp_payin_and_a_wrong_one_is_refused() {
    let redis = RedisServer::start();
    let app = spawn_with_sandbox(&redis, patient_sandbox()).await;
    let sandbox = app.sandbox_url.clone().unwrap();
    let mut client = app.client().await;
    client
        .create_payin(hub2_payin("h2-otp", "+2250700000042", "orange"))
        .await
        .unwrap();
    let confirm = |code: &str, key: &str| pb::ConfirmPayinRequest {
        reference: "h2-otp".into(),
        code: code.into(),
        idempotency_key: key.into(),
    };
    let wrong = client
        .confirm_payin(confirm("000000", "otp-wrong"))
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::InvalidArgument, "{}", wrong.message());
    assert!(
        wrong.message().contains("invalid confirmation code"),
        "{}",
        wrong.message()
    );
    let still = refreshed(&mut client, "h2-otp").await;
    assert_eq!(still.status(), pb::PayinStatus::AwaitingConfirmation);
    assert_eq!(
        still.next_action.map(|a| a.r#type()),
        Some(pb::NextActionType::Otp)
    );

    let confirmed = client
        .confirm_payin(confirm("123456", "otp-right"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(confirmed.status(), pb::PayinStatus::Processing);
    assert_eq!(confirmed.next_action, None);
    let seen = statuses_until_final(&mut client, "h2-otp").await;
    assert_eq!(seen.last(), Some(&pb::PayinStatus::Succeeded), "{seen:?}");
    assert_eq!(
        hub2_writes(&sandbox, "h2-otp").await,
        [
            ("hub2_intent".into(), 201),
            ("hub2_payment".into(), 200),
            ("hub2_authentication".into(), 422),
            ("hub2_authentication".into(), 200),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn magic_endings_play_their_scenario_through_the_service() {
    let redis = RedisServer::start();
    let app = spawn_with_sandbox(&redis, patient_sandbox()).await;
    let mut client = app.client().await;
    use pb::PayinStatus::*;
    for (ending, operator, last) in [
        ("0000", "orange", Succeeded),
        ("0001", "mtn", Failed),
        ("0002", "moov", Expired),
        ("0003", "wave", Failed),
    ] {
        let reference = format!("h2-magic-{ending}");
        let msisdn = format!("+22507000{ending}");
        let created = client
            .create_payin(hub2_payin(&reference, &msisdn, operator))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(created.status(), AwaitingConfirmation);
        let seen = statuses_until_final(&mut client, &reference).await;
        assert_eq!(seen.last(), Some(&last), "{ending}: {seen:?}");
    }
    let declined = refreshed(&mut client, "h2-magic-0001").await;
    assert_eq!(declined.failure.unwrap().code, "payment_declined");
    let failed = refreshed(&mut client, "h2-magic-0003").await;
    assert_eq!(failed.failure.unwrap().code, "insufficient_funds");
}

/// Only webhooks can move the stream here (polling is far away). The sandbox has rotated
/// ahead: `s1` is signed with a secret the service does not know yet, `s0` with the one it
/// does; a sandbox signing with a secret the service never had changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_webhooks_are_verified_during_a_rotation() {
    let redis = RedisServer::start();
    let spawn = |sandbox_secrets: &str| {
        let mut config = test_config("http://unused.invalid", Some(redis.url()), test_settings());
        config.providers.novasend.api = None;
        config.sandbox = patient_sandbox();
        config.sandbox.hub2.webhook_secrets = WebhookSecrets::parse(sandbox_secrets).unwrap();
        config.providers.hub2.webhook_secrets = WebhookSecrets::parse("whsec_current").unwrap();
        config.payments.poll_interval = Duration::from_secs(600);
        TestApp::spawn(config)
    };
    let rotated = spawn("whsec_next,whsec_current").await;
    let mut client = rotated.client().await;
    client
        .create_payin(hub2_payin("h2-signed", "+2250700000000", "orange"))
        .await
        .unwrap();
    let seen = statuses_until_final(&mut client, "h2-signed").await;
    assert_eq!(seen.last(), Some(&pb::PayinStatus::Succeeded), "{seen:?}");

    let stranger = spawn("whsec_unknown").await;
    let mut client = stranger.client().await;
    client
        .create_payin(hub2_payin("h2-unsigned", "+2250700000000", "orange"))
        .await
        .unwrap();
    // Two steps (200 ms) and then some: the sandbox says successful, the service still
    // knows only what it was answered.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let cached = client
        .get_payin(GetPayinRequest {
            reference: "h2-unsigned".into(),
            refresh: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cached.status(), pb::PayinStatus::AwaitingConfirmation);
    assert_eq!(
        refreshed(&mut client, "h2-unsigned").await.status(),
        pb::PayinStatus::Succeeded,
        "the sandbox did move"
    );
}

/// The same faults as Novasend's apply to HUB2's routes, and the journal shows what
/// happened upstream: a refused intent leaves nothing, an attempt whose answer was lost is
/// reconciled, never sent twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_apply_to_hub2_and_an_attempt_is_never_sent_twice() {
    let redis = RedisServer::start();
    let app = spawn_with_sandbox(&redis, patient_sandbox()).await;
    let sandbox = app.sandbox_url.clone().unwrap();
    let mut client = app.client().await;
    let http = reqwest::Client::new();
    let add = |fault: serde_json::Value| {
        let request = http.post(format!("{sandbox}/_sandbox/faults")).json(&fault);
        async move { assert_eq!(request.send().await.unwrap().status(), 201) }
    };

    add(
        json!({"kind": "status", "status": 503, "count": 1, "method": "POST",
               "path_prefix": "/hub2/payment-intents"}),
    )
    .await;
    let refused = client
        .create_payin(hub2_payin("h2-fault-1", "+2250700000042", "orange"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable, "{}", refused.message());
    client
        .create_payin(hub2_payin("h2-fault-1", "+2250700000042", "orange"))
        .await
        .unwrap();
    assert_eq!(
        hub2_writes(&sandbox, "h2-fault-1").await,
        [("hub2_intent".into(), 201), ("hub2_payment".into(), 200)]
    );

    // The attempt is processed, then the connection is cut: the client re-reads the intent
    // and finds its attempt.
    add(json!({"kind": "drop_after", "count": 1, "method": "POST",
               "path_prefix": "/hub2/payment-intents/"}))
    .await;
    let reconciled = client
        .create_payin(hub2_payin("h2-fault-2", "+2250700000042", "mtn"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reconciled.status(), pb::PayinStatus::AwaitingConfirmation);
    assert_eq!(
        reconciled.next_action.map(|a| a.r#type()),
        Some(pb::NextActionType::Ussd)
    );
    assert_eq!(
        hub2_writes(&sandbox, "h2-fault-2").await,
        [("hub2_intent".into(), 201), ("hub2_payment".into(), 200)]
    );
    let stats: serde_json::Value = reqwest::get(format!("{sandbox}/_sandbox/stats"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        stats["requests"]["POST /hub2/payment-intents/{id}/payments"]
            .as_u64()
            .is_some_and(|n| n == 2),
        "{stats}"
    );
}

/// An intent whose answer is lost is an orphan that charges no one (contract §9): the retry
/// with the same key opens another intent and makes the one payment attempt on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_intent_is_left_as_an_orphan_and_the_retry_pays_once() {
    let redis = RedisServer::start();
    let app = spawn_with_sandbox(&redis, patient_sandbox()).await;
    let sandbox = app.sandbox_url.clone().unwrap();
    let mut client = app.client().await;
    let added = reqwest::Client::new()
        .post(format!("{sandbox}/_sandbox/faults"))
        .json(&json!({"kind": "drop_after", "count": 1, "method": "POST",
                      "path_prefix": "/hub2/payment-intents"}))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), 201);
    let lost = client
        .create_payin(hub2_payin("h2-orphan", "+2250700000042", "orange"))
        .await
        .unwrap_err();
    assert_eq!(lost.code(), Code::Unavailable, "{}", lost.message());
    let paid = client
        .create_payin(hub2_payin("h2-orphan", "+2250700000042", "orange"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(paid.status(), pb::PayinStatus::AwaitingConfirmation);
    let writes = hub2_writes(&sandbox, "h2-orphan").await;
    let count = |operation: &str| writes.iter().filter(|(o, _)| o == operation).count();
    assert_eq!(
        (count("hub2_intent"), count("hub2_payment")),
        (2, 1),
        "{writes:?}"
    );
}
