//! The bare create: the round trips a CreatePayin makes, with none of its work. One Redis
//! script call before the provider, the provider's `POST /v1/payin/sessions` (the same
//! headers and JSON body, over a client built as the service builds its own), one Redis script
//! call after it carrying what the real save carries (the payin and the answer), then an
//! answer. The scripts do nothing, so what the bench measures on this side is the floor that
//! tonic, redis-rs, reqwest and the kernel's loopback set under the service's own CPU per
//! create, and Redis's floor for two script calls.

use super::procs::{API_CLIENT, API_KEY};
use crate::proto::{CreatePayinRequest, Customer, Payin, PayinStatus};
use prost::Message;
use redis::Script;
use redis::aio::ConnectionManager;
use std::time::Duration;
use tonic::Status;

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";

pub struct BareCreate {
    redis: ConnectionManager,
    http: reqwest::Client,
    sessions_url: String,
    /// A script that reads nothing and writes nothing.
    nothing: Script,
}

impl BareCreate {
    pub async fn connect(redis_url: &str, sandbox_url: &str) -> Result<Self, String> {
        let unreachable = |e: redis::RedisError| format!("{redis_url}: {e}");
        let redis = redis::Client::open(redis_url)
            .map_err(unreachable)?
            .get_connection_manager()
            .await
            .map_err(unreachable)?;
        // As `ProviderHttp` builds the service's client.
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true)
            .redirect(reqwest::redirect::Policy::none())
            .retry(reqwest::retry::never().max_retries_per_request(0))
            .user_agent(concat!("payments-gateway/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            redis,
            http,
            sessions_url: format!("{sandbox_url}/v1/payin/sessions"),
            nothing: Script::new("return 1"),
        })
    }

    pub async fn create(&self, request: &CreatePayinRequest) -> Result<Payin, Status> {
        let record = format!("bare:record:{}", request.idempotency_key);
        self.script(&record, &[request.reference.as_bytes()])
            .await?;
        let body = serde_json::to_vec(&serde_json::json!({
            "reference": request.reference,
            "amount": request.amount,
            "msisdn": request.msisdn,
            "customerName": request.customer_name,
            "country": request.country,
        }))
        .map_err(|e| Status::internal(e.to_string()))?;
        let key = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, record.as_bytes());
        let response = self
            .http
            .post(&self.sessions_url)
            .basic_auth(API_KEY, Some(API_CLIENT))
            .header(reqwest::header::ACCEPT, "application/json")
            .header(reqwest::header::ACCEPT_LANGUAGE, "en")
            .header("X-Idempotency-Key", key.to_string())
            // The service sends its span's trace context: a header of the same size.
            .header("traceparent", TRACEPARENT)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| Status::unavailable(e.without_url().to_string()))?;
        let provider_answer = response
            .bytes()
            .await
            .map_err(|e| Status::unavailable(e.without_url().to_string()))?;
        let payin = Payin {
            reference: request.reference.clone(),
            provider_reference: format!("tr_{}", request.reference),
            status: PayinStatus::Pending.into(),
            amount: request.amount,
            currency: "XOF".into(),
            payment_url: format!("http://127.0.0.1/pay/{}", request.reference),
            customer: Some(Customer {
                name: request.customer_name.clone(),
                ..Customer::default()
            }),
            country: request.country.clone(),
            ..Payin::default()
        };
        let answer = payin.encode_to_vec();
        self.script(&record, &[&provider_answer, &answer]).await?;
        Ok(payin)
    }

    async fn script(&self, key: &str, args: &[&[u8]]) -> Result<(), Status> {
        let mut invocation = self.nothing.key(key);
        for arg in args {
            invocation.arg(*arg);
        }
        invocation
            .invoke_async::<i64>(&mut self.redis.clone())
            .await
            .map(|_| ())
            .map_err(|e| Status::unavailable(e.to_string()))
    }
}
