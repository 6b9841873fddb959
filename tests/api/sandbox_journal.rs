//! The sandbox's journal of processed writes and its `malformed_after` fault: what the
//! fault simulation counts provider-side effects with.
use payments_gateway::sandbox::{JournalPage, SandboxConfig};
use serde_json::{Value, json};

struct Sandbox {
    _handle: payments_gateway::sandbox::SandboxHandle,
    http: reqwest::Client,
    base: String,
}

impl Sandbox {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let handle = payments_gateway::sandbox::start(listener, SandboxConfig::default()).unwrap();
        Sandbox {
            base: handle.base_url(),
            _handle: handle,
            http: reqwest::Client::new(),
        }
    }

    /// A write; `None` when the body cannot be read (a malformed answer or a dropped one).
    async fn post(&self, path: &str, key: &str, body: Value) -> (Option<u16>, Option<Value>) {
        let sent = self
            .http
            .post(format!("{}{path}", self.base))
            .basic_auth("sandbox-api-key", Some("sandbox-api-client"))
            .header("x-idempotency-key", key)
            .json(&body)
            .send()
            .await;
        match sent {
            Ok(response) => (
                Some(response.status().as_u16()),
                response.json::<Value>().await.ok(),
            ),
            Err(_) => (None, None),
        }
    }

    async fn fault(&self, fault: Value) {
        let response = self
            .http
            .post(format!("{}/_sandbox/faults", self.base))
            .json(&fault)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }

    async fn journal(&self) -> JournalPage {
        self.http
            .get(format!("{}/_sandbox/journal", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

fn session(reference: &str) -> Value {
    json!({"reference": reference, "amount": 300, "msisdn": "+2250700000042",
           "customerName": "Awa", "country": "CI"})
}

fn key() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journal_holds_processed_writes_only() {
    let sandbox = Sandbox::start().await;
    let sessions = "/v1/payin/sessions";
    let first_key = key();
    assert_eq!(
        sandbox.post(sessions, &first_key, session("j-1")).await.0,
        Some(201)
    );
    assert_eq!(
        sandbox.post(sessions, &key(), session("j-1")).await.0,
        Some(409)
    );
    // Answered by a fault before processing: no trace.
    sandbox
        .fault(json!({"kind": "status", "status": 503, "count": 1}))
        .await;
    assert_eq!(
        sandbox.post(sessions, &key(), session("j-2")).await.0,
        Some(503)
    );
    sandbox
        .fault(json!({"kind": "malformed", "count": 1}))
        .await;
    let (status, body) = sandbox.post(sessions, &key(), session("j-3")).await;
    assert_eq!((status, body), (Some(200), None));
    // Processed, then the answer is lost or unreadable: journaled.
    sandbox
        .fault(json!({"kind": "drop_after", "count": 1}))
        .await;
    assert_eq!(
        sandbox.post(sessions, &key(), session("j-4")).await,
        (None, None)
    );
    sandbox
        .fault(json!({"kind": "malformed_after", "count": 1}))
        .await;
    let (status, body) = sandbox.post(sessions, &key(), session("j-5")).await;
    assert_eq!((status, body), (Some(201), None));
    // A refund of a payin that is not completed is refused, and journaled with its amounts.
    let refund_key = key();
    let refused = sandbox
        .post(
            "/v1/payin/j-1/refund",
            &refund_key,
            json!({"reason": "asked", "amount": 100}),
        )
        .await;
    assert_eq!(refused.0, Some(422));

    let page = sandbox.journal().await;
    let seen: Vec<(&str, &str, u16)> = page
        .entries
        .iter()
        .map(|e| (e.operation.as_str(), e.reference.as_str(), e.http_status))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("create", "j-1", 201),
            ("create", "j-1", 409),
            ("create", "j-4", 201),
            ("create", "j-5", 201),
            ("refund", "j-1", 422),
        ]
    );
    assert_eq!(page.entries[0].idempotency_key, first_key);
    assert_eq!(page.entries[0].amount, Some(300));
    let refund = &page.entries[4];
    assert_eq!(refund.payin_reference.as_deref(), Some("j-1"));
    assert_eq!((refund.amount, refund.payin_amount), (Some(100), Some(300)));
    assert_eq!(page.dropped, 0);
}
