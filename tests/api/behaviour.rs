//! One behavioural suite, written once and run against both providers (issue 10): the same
//! calls through the service against the in-process sandbox simulating Novasend or HUB2 —
//! create, idempotency, get and refresh, a stream driven by signed webhooks (checked, mid-
//! rotation) to a terminal status, polling coalesced across watchers, an answer lost after
//! the money write reconciled without a second write, and errors that leave no trace.

use crate::common::*;
use futures_util::StreamExt;
use payments_gateway::payments::PaymentsSettings;
use payments_gateway::proto::{
    self as pb, CreatePayinRequest, GetPayinRequest, StreamPayinUpdatesRequest,
};
use payments_gateway::provider::WebhookSecrets;
use payments_gateway::sandbox::{JournalPage, SandboxConfig};
use serde_json::{Value, json};
use std::time::Duration;
use tonic::Code;

type Client = pb::payments_service_client::PaymentsServiceClient<tonic::transport::Channel>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    Novasend,
    Hub2,
}

impl Via {
    fn provider(self) -> pb::Provider {
        match self {
            Via::Novasend => pb::Provider::Novasend,
            Via::Hub2 => pb::Provider::Hub2,
        }
    }

    /// A create the provider takes; the HUB2 payer's operator is one whose next action is
    /// a page to accept, as Novasend's payer has.
    fn request(self, reference: &str, key: &str) -> CreatePayinRequest {
        CreatePayinRequest {
            provider: self.provider() as i32,
            operator: if self == Via::Hub2 {
                "moov".into()
            } else {
                String::new()
            },
            ..create_request(reference, key)
        }
    }

    /// The journal's operation for the write that may move money.
    fn money_write(self) -> &'static str {
        match self {
            Via::Novasend => "create",
            Via::Hub2 => "hub2_payment",
        }
    }

    /// The sandbox route of a payin read, as its stats count them.
    fn read_route(self) -> &'static str {
        match self {
            Via::Novasend => "GET /v1/payin/{reference}",
            Via::Hub2 => "GET /hub2/payment-intents/{id}",
        }
    }

    /// The route prefix of the money write, for a fault.
    fn money_path(self) -> &'static str {
        match self {
            Via::Novasend => "/v1/payin/sessions",
            Via::Hub2 => "/hub2/payment-intents/",
        }
    }
}

struct World {
    _redis: RedisServer,
    app: TestApp,
    client: Client,
    sandbox: String,
    http: reqwest::Client,
}

impl World {
    async fn start() -> Self {
        let redis = RedisServer::start();
        let mut config = test_config(
            "http://unused.invalid",
            Some(redis.url()),
            PaymentsSettings {
                poll_interval: Duration::from_millis(400),
                ..test_settings()
            },
        );
        config.providers.novasend.api = None;
        config.sandbox = SandboxConfig {
            step_delay: Duration::from_millis(100),
            expiry: Duration::from_secs(60),
            // Novasend's webhooks signed with the newest of the service's secrets.
            webhook_secret: Some("whsec_behaviour_new".into()),
            ..Default::default()
        };
        // Signatures checked for both providers, each mid-rotation; the sandbox's HUB2 signs
        // with the service's HUB2 secrets.
        let secrets = WebhookSecrets::parse("whsec_behaviour_new,whsec_behaviour_old").unwrap();
        config.providers.novasend.webhook_secrets = secrets.clone();
        config.providers.hub2.webhook_secrets = secrets;
        let app = TestApp::spawn(config).await;
        let client = app.client().await;
        let sandbox = app.sandbox_url.clone().unwrap();
        World {
            _redis: redis,
            app,
            client,
            sandbox,
            http: reqwest::Client::new(),
        }
    }

    async fn journal_of(&self, reference: &str, operation: &str) -> Vec<u16> {
        let page: JournalPage = self
            .http
            .get(format!("{}/_sandbox/journal", self.sandbox))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let hub2_intents: Vec<String> = page
            .entries
            .iter()
            .filter(|e| e.operation == "hub2_intent" && e.reference == reference)
            .filter_map(|e| e.payin_reference.clone())
            .collect();
        page.entries
            .into_iter()
            .filter(|e| e.operation == operation)
            .filter(|e| {
                e.reference == reference
                    || e.payin_reference.as_deref() == Some(reference)
                    || hub2_intents.contains(&e.reference)
            })
            .map(|e| e.http_status)
            .collect()
    }

    async fn reads(&self, via: Via) -> u64 {
        let stats: Value = self
            .http
            .get(format!("{}/_sandbox/stats", self.sandbox))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        stats["requests"][via.read_route()].as_u64().unwrap_or(0)
    }

    async fn fault(&self, fault: Value) {
        let added = self
            .http
            .post(format!("{}/_sandbox/faults", self.sandbox))
            .json(&fault)
            .send()
            .await
            .unwrap();
        assert_eq!(added.status(), 201);
    }

    /// The payer accepts on the page the payin names.
    async fn payer_accepts(&self, payin: &pb::Payin) {
        assert!(!payin.payment_url.is_empty(), "{payin:?}");
        let accepted = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .post(format!("{}/accept", payin.payment_url))
            .send()
            .await
            .unwrap();
        assert!(accepted.status().is_redirection() || accepted.status().is_success());
    }

    async fn get(&mut self, reference: &str, refresh: bool) -> Result<pb::Payin, tonic::Status> {
        self.client
            .get_payin(GetPayinRequest {
                reference: reference.into(),
                refresh,
            })
            .await
            .map(tonic::Response::into_inner)
    }
}

async fn behaviour(via: Via) {
    let mut w = World::start().await;
    let reference = "order-behaviour";

    // Create: the provider asked for, the payer's page, the caller's name.
    let created = w
        .client
        .create_payin(via.request(reference, "key-1"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.provider(), via.provider());
    assert_eq!(
        created.status(),
        pb::PayinStatus::AwaitingConfirmation,
        "{via:?}"
    );
    assert_eq!(created.customer.as_ref().unwrap().name, "Awa Kone");

    // Idempotency: replayed byte for byte, a changed request refused, the reference kept.
    let replay = w
        .client
        .create_payin(via.request(reference, "key-1"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(replay, created);
    let changed = CreatePayinRequest {
        amount: 301,
        ..via.request(reference, "key-1")
    };
    assert_eq!(
        w.client.create_payin(changed).await.unwrap_err().code(),
        Code::FailedPrecondition
    );
    let stranger = w
        .client
        .create_payin(via.request(reference, "key-2"))
        .await
        .unwrap_err();
    assert_eq!(stranger.code(), Code::AlreadyExists);
    assert_eq!(
        w.journal_of(reference, via.money_write()).await,
        [if via == Via::Hub2 { 200 } else { 201 }]
    );

    // Get from the cache, and refreshed from the provider.
    assert_eq!(w.get(reference, false).await.unwrap(), created);
    assert_eq!(
        w.get(reference, true).await.unwrap().status(),
        pb::PayinStatus::AwaitingConfirmation
    );

    // Streams: five watchers; the provider is read at most once a poll interval for all.
    let mut streams = Vec::new();
    for _ in 0..5 {
        let request = StreamPayinUpdatesRequest {
            reference: reference.into(),
        };
        streams.push(
            w.client
                .stream_payin_updates(request)
                .await
                .unwrap()
                .into_inner(),
        );
    }
    for stream in &mut streams {
        let snapshot = stream.next().await.unwrap().unwrap();
        assert_eq!(snapshot.source(), pb::UpdateSource::Snapshot);
    }
    let before = w.reads(via).await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let polled = w.reads(via).await - before;
    assert!(
        polled <= 4,
        "{via:?}: {polled} reads in 3 poll intervals for 5 watchers"
    );

    // The payer accepts: signed webhooks move every stream to SUCCEEDED, and they end.
    w.payer_accepts(&created).await;
    for stream in &mut streams {
        let mut sources = Vec::new();
        let mut last = None;
        while let Some(update) = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("the stream moves")
        {
            let update = update.unwrap();
            sources.push(update.source());
            last = update.payin.map(|p| p.status());
        }
        assert_eq!(last, Some(pb::PayinStatus::Succeeded), "{via:?}");
        assert!(
            sources.contains(&pb::UpdateSource::Webhook),
            "{via:?}: {sources:?}"
        );
    }

    // An answer lost after the provider processed the money write: reconciled, not resent.
    w.fault(json!({"kind": "drop_after", "count": 1, "method": "POST", "path_prefix": via.money_path()})).await;
    let lost = "order-lost";
    let first = w.client.create_payin(via.request(lost, "key-lost")).await;
    let payin = match first {
        Ok(payin) => payin.into_inner(),
        Err(unknown) => {
            assert_eq!(unknown.code(), Code::Unavailable, "{}", unknown.message());
            w.client
                .create_payin(via.request(lost, "key-lost"))
                .await
                .unwrap()
                .into_inner()
        }
    };
    assert_eq!(payin.status(), pb::PayinStatus::AwaitingConfirmation);
    assert_eq!(
        w.journal_of(lost, via.money_write()).await.len(),
        1,
        "{via:?}: one money write"
    );

    // Errors: precise, and nothing kept or sent.
    let bad = CreatePayinRequest {
        msisdn: "0700".into(),
        ..via.request("order-bad", "key-bad")
    };
    let refused = w.client.create_payin(bad).await.unwrap_err();
    assert_eq!(violated_fields(&refused), ["msisdn"]);
    assert!(
        w.journal_of("order-bad", via.money_write())
            .await
            .is_empty()
    );
    assert_eq!(
        w.get("order-never", false).await.unwrap_err().code(),
        Code::NotFound
    );
    let _ = &w.app;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn novasend_behaves() {
    behaviour(Via::Novasend).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub2_behaves() {
    behaviour(Via::Hub2).await;
}
