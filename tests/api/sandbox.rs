//! The built-in sandbox: faithful to Novasend's documents, driving real payin lifecycles.
use crate::common::*;
use payments_gateway::proto::{self as pb, PayinUpdate, StreamPayinUpdatesRequest};
use payments_gateway::provider::WebhookSecrets;
use std::time::Duration;

/// Follows a payin's stream to its end; returns every status it reported.
pub(crate) async fn statuses_until_final(
    client: &mut pb::payments_service_client::PaymentsServiceClient<tonic::transport::Channel>,
    reference: &str,
) -> Vec<pb::PayinStatus> {
    let mut stream = client
        .stream_payin_updates(StreamPayinUpdatesRequest {
            reference: reference.into(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut seen = Vec::new();
    loop {
        let message: Option<PayinUpdate> =
            tokio::time::timeout(Duration::from_secs(10), stream.message())
                .await
                .expect("the stream moves")
                .unwrap();
        match message {
            Some(update) => seen.push(update.payin.unwrap().status()),
            None => return seen,
        }
    }
}

pub(crate) fn payin_request(reference: &str, msisdn: &str) -> pb::CreatePayinRequest {
    pb::CreatePayinRequest {
        msisdn: msisdn.into(),
        ..create_request(reference, &format!("key-{reference}"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn magic_numbers_play_their_scenario_end_to_end() {
    let redis = RedisServer::start();
    let app = spawn_with_sandbox(&redis, quick_sandbox()).await;
    let mut client = app.client().await;
    use pb::PayinStatus::*;
    for (suffix, last) in [
        ("0000", Succeeded),
        ("0001", Declined),
        ("0002", Expired),
        ("0003", Failed),
    ] {
        let reference = format!("magic-{suffix}");
        let created = client
            .create_payin(payin_request(&reference, &format!("+22507000{suffix}")))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(created.status(), AwaitingConfirmation);
        let seen = statuses_until_final(&mut client, &reference).await;
        assert_eq!(seen.last(), Some(&last), "{suffix}: {seen:?}");
    }
    // 0004 never answers, and never expires either (the expiry here is 1 s).
    client
        .create_payin(payin_request("magic-0004", "+2250700000004"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let silent = client
        .get_payin(pb::GetPayinRequest {
            reference: "magic-0004".into(),
            refresh: true,
        })
        .await
        .unwrap();
    assert_eq!(silent.get_ref().status(), AwaitingConfirmation);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_payment_page_accepts_declines_and_expires() {
    let redis = RedisServer::start();
    let app = spawn_with_sandbox(&redis, quick_sandbox()).await;
    let mut client = app.client().await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let accepted = client
        .create_payin(payin_request("page-yes", "+2250700000042"))
        .await
        .unwrap()
        .into_inner();
    let page = http
        .get(&accepted.payment_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("**********0042") && !page.contains("+2250700000042"),
        "the payer is masked"
    );
    assert!(page.contains(">300 XOF<") && page.contains(">6 XOF<") && page.contains(">306 XOF<"));
    assert!(!page.contains("<script"), "works without JavaScript");
    let answer = http
        .post(format!("{}/accept", accepted.payment_url))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 303);
    let seen = statuses_until_final(&mut client, "page-yes").await;
    assert_eq!(seen.last(), Some(&pb::PayinStatus::Succeeded), "{seen:?}");

    let declined = client
        .create_payin(payin_request("page-no", "+2250700000043"))
        .await
        .unwrap()
        .into_inner();
    http.post(format!("{}/decline", declined.payment_url))
        .send()
        .await
        .unwrap();
    assert_eq!(
        statuses_until_final(&mut client, "page-no").await.last(),
        Some(&pb::PayinStatus::Declined)
    );

    client
        .create_payin(payin_request("page-late", "+2250700000044"))
        .await
        .unwrap();
    assert_eq!(
        statuses_until_final(&mut client, "page-late").await.last(),
        Some(&pb::PayinStatus::Expired)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_webhooks_are_signed_and_the_service_checks_them() {
    let redis = RedisServer::start();
    let mut config = test_config("http://unused.invalid", Some(redis.url()), test_settings());
    config.providers.novasend.api = None;
    config.sandbox = quick_sandbox();
    let secret = secrecy::SecretString::from("whsec_shared");
    config.providers.novasend.webhook_secrets = WebhookSecrets::one(secret.clone());
    config.sandbox.webhook_secret = Some(secret);
    // Polling far away: only signed webhooks can move the stream.
    config.payments.poll_interval = Duration::from_secs(600);
    let app = TestApp::spawn(config).await;
    let mut client = app.client().await;
    client
        .create_payin(payin_request("signed", "+2250700000000"))
        .await
        .unwrap();
    let seen = statuses_until_final(&mut client, "signed").await;
    assert_eq!(seen.last(), Some(&pb::PayinStatus::Succeeded), "{seen:?}");
}
