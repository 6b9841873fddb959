//! A Novasend-compatible sandbox with real state: sessions, status, refunds, a payment page
//! for the payer, magic phone numbers, signed webhooks and fault injection.
//! `payments-gateway sandbox` runs it alone; `serve` without NOVASEND_BASE_URL runs it in process.

mod faults;
mod page;
mod state;

pub use faults::{Fault, FaultKind};
pub use state::ResponseShape;

use crate::domain::{Countries, Language};
use crate::provider::novasend::webhook::{SIGNATURE_HEADER, sign};
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use state::{
    Ledger, SandboxPayin, SandboxRefund, Scenario, Step, error_json, fee_for, new_id,
    validate_session,
};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::net::TcpListener;

#[derive(Clone)]
pub struct SandboxConfig {
    pub api_key: SecretString,
    pub api_client: SecretString,
    /// Fee in percent of the amount, rounded up to a whole unit.
    pub fee_percent: u32,
    pub shape: ResponseShape,
    /// The pause between two steps of a payin's life (accepted → processed → completed).
    pub step_delay: Duration,
    /// How long a payin waits for its payer before it expires.
    pub expiry: Duration,
    /// Where to POST webhooks; none if unset.
    pub webhook_url: Option<String>,
    /// Signs webhooks (`x-novasend-signature`) when set.
    pub webhook_secret: Option<SecretString>,
    pub countries: Countries,
    /// Faults active from the start.
    pub faults: Vec<Fault>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            api_key: SecretString::from("sandbox-api-key"),
            api_client: SecretString::from("sandbox-api-client"),
            fee_percent: 2,
            shape: ResponseShape::default(),
            step_delay: Duration::from_secs(2),
            expiry: Duration::from_secs(600),
            webhook_url: None,
            webhook_secret: None,
            countries: Countries::default(),
            faults: Vec::new(),
        }
    }
}

struct Shared {
    config: SandboxConfig,
    base_url: String,
    ledger: Mutex<Ledger>,
    faults: Mutex<faults::Faults>,
    webhooks: reqwest::Client,
}

impl Shared {
    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn faults(&self) -> MutexGuard<'_, faults::Faults> {
        self.faults.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn payment_url(&self, payin: &SandboxPayin) -> String {
        format!("{}/pay/{}", self.base_url, payin.token)
    }

    fn render(&self, payin: &SandboxPayin) -> Value {
        payin.to_json(self.config.shape, &self.payment_url(payin))
    }
}

/// A running sandbox; dropping it stops it.
pub struct SandboxHandle {
    pub address: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl SandboxHandle {
    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }
}

impl Drop for SandboxHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves the sandbox on `listener` until the handle is dropped.
pub fn start(listener: TcpListener, config: SandboxConfig) -> Result<SandboxHandle, String> {
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    let webhooks = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| format!("cannot build the sandbox's webhook client: {e}"))?;
    let mut faults = faults::Faults::default();
    for fault in &config.faults {
        faults.add(fault.clone());
    }
    let shared = Arc::new(Shared {
        base_url: format!("http://{address}"),
        config,
        ledger: Mutex::default(),
        faults: Mutex::new(faults),
        webhooks,
    });
    let api = Router::new()
        .route("/v1/payin/sessions", post(create_session))
        .route("/v1/payin/{reference}", get(get_payin))
        .route("/v1/payin/{reference}/refund", post(refund))
        .layer(middleware::from_fn_with_state(
            shared.clone(),
            inject_faults,
        ));
    let router = Router::new()
        .merge(api)
        .route("/pay/{token}", get(payment_page))
        .route("/pay/{token}/accept", post(accept))
        .route("/pay/{token}/decline", post(decline))
        .route(
            "/_sandbox/faults",
            get(list_faults).post(add_fault).delete(clear_faults),
        )
        .with_state(shared);
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!("sandbox server failed: {e}");
        }
    });
    tracing::info!(%address, "novasend sandbox listening");
    Ok(SandboxHandle { address, task })
}

type Reply = (StatusCode, Json<Value>);

fn reply(status: StatusCode, body: Value) -> Reply {
    (status, Json(body))
}

fn refuse(status: StatusCode, error: &str, message: &str) -> Reply {
    reply(status, error_json(status.as_u16(), error, message, vec![]))
}

fn language(headers: &HeaderMap) -> Language {
    headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .map(Language::from_accept_language)
        .unwrap_or_default()
}

/// Basic auth with the sandbox's key and client.
fn authorized(shared: &Shared, headers: &HeaderMap) -> Result<(), Reply> {
    use base64::Engine;
    let expected = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        shared.config.api_key.expose_secret(),
        shared.config.api_client.expose_secret()
    ));
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .unwrap_or("");
    let equal = given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if equal {
        Ok(())
    } else {
        Err(refuse(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "invalid API credentials",
        ))
    }
}

/// X-Idempotency-Key must be a UUID.
fn idempotency_key(headers: &HeaderMap, language: Language) -> Result<String, Reply> {
    headers
        .get("x-idempotency-key")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| uuid::Uuid::parse_str(v).ok())
        .map(|u| u.to_string())
        .ok_or_else(|| {
            refuse(
                StatusCode::BAD_REQUEST,
                "Bad Request",
                language.pick(
                    "X-Idempotency-Key must be a UUID",
                    "X-Idempotency-Key doit être un UUID",
                ),
            )
        })
}

/// What every write checks first: credentials, a UUID idempotency key, a JSON object body.
fn checked_write(
    shared: &Shared,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Language, String, Value), Reply> {
    authorized(shared, headers)?;
    let language = language(headers);
    let key = idempotency_key(headers, language)?;
    let body = json_body(body, language)?;
    Ok((language, key, body))
}

fn json_body(body: &[u8], language: Language) -> Result<Value, Reply> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| {
            refuse(
                StatusCode::BAD_REQUEST,
                "Bad Request",
                language.pick(
                    "the body must be a JSON object",
                    "le corps doit être un objet JSON",
                ),
            )
        })
}

async fn create_session(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    create_session_inner(&shared, &headers, &body).unwrap_or_else(|refused| refused)
}

fn create_session_inner(
    shared: &Arc<Shared>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Reply, Reply> {
    let (language, key, body) = checked_write(shared, headers, body)?;
    let errors = validate_session(&body, &shared.config.countries, language);
    if !errors.is_empty() {
        let message = language.pick("Validation failed", "La validation a échoué");
        return Err(reply(
            StatusCode::UNPROCESSABLE_ENTITY,
            error_json(422, "Unprocessable Entity", message, errors),
        ));
    }
    let text = |key: &str| {
        body.get(key)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let request_print = format!("create:{body}");
    let mut ledger = shared.ledger();
    if let Some(answer) = replayed(&ledger, &key, &request_print) {
        return answer;
    }
    let reference = text("reference");
    if ledger.find(&reference).is_some() {
        let message = language.pick("reference already used", "référence déjà utilisée");
        return Err(refuse(StatusCode::CONFLICT, "Conflict", message));
    }
    let amount = body["amount"].as_i64().unwrap_or_default();
    let country = text("country");
    let msisdn = text("msisdn");
    let payin = SandboxPayin {
        id: new_id("pr"),
        api_reference: new_id("tr"),
        merchant_reference: reference,
        token: new_id("lk")[3..].to_owned(),
        amount,
        fee: fee_for(amount, shared.config.fee_percent),
        currency: shared
            .config
            .countries
            .currency_of(&country)
            .unwrap_or_default()
            .to_owned(),
        scenario: Scenario::for_msisdn(&msisdn),
        msisdn,
        customer_name: text("customerName").trim().to_owned(),
        success_url: body
            .pointer("/action/successUrl")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        failure_url: body
            .pointer("/action/failureUrl")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        status: "processing",
        confirmation_status: "none",
        created_at: Utc::now(),
        transaction: None,
        failure: None,
        refund: None,
    };
    let rendered = shared.render(&payin);
    let id = payin.id.clone();
    let d = shared.config.step_delay;
    let plan = match payin.scenario {
        Scenario::Interactive => vec![(shared.config.expiry, Step::Expire)],
        Scenario::Succeeds => vec![(d, Step::Accept), (d, Step::Process), (d, Step::Complete)],
        Scenario::Declined => vec![(d, Step::Decline)],
        Scenario::Expires => vec![(d, Step::Expire)],
        Scenario::TransactionFails => vec![
            (d, Step::Accept),
            (d, Step::Process),
            (d, Step::FailTransaction),
        ],
        Scenario::Silent => vec![],
    };
    ledger.insert(payin);
    ledger
        .replies
        .insert(key, (request_print, 201, rendered.clone()));
    drop(ledger);
    schedule(shared.clone(), id, plan);
    Ok(reply(StatusCode::CREATED, rendered))
}

/// A repeated X-Idempotency-Key: the first answer for the same request, 409 for another.
fn replayed(ledger: &Ledger, key: &str, request_print: &str) -> Option<Result<Reply, Reply>> {
    let (print, status, stored) = ledger.replies.get(key)?;
    if print == request_print {
        let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::OK);
        return Some(Ok(reply(status, stored.clone())));
    }
    Some(Err(refuse(
        StatusCode::CONFLICT,
        "Conflict",
        "X-Idempotency-Key already used with another request",
    )))
}

async fn get_payin(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(reference): Path<String>,
) -> Reply {
    if let Err(refused) = authorized(&shared, &headers) {
        return refused;
    }
    let ledger = shared.ledger();
    match ledger.find(&reference) {
        Some(payin) => reply(StatusCode::OK, shared.render(payin)),
        None => {
            let message = language(&headers).pick("payin not found", "paiement introuvable");
            refuse(StatusCode::NOT_FOUND, "Not Found", message)
        }
    }
}

async fn refund(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(reference): Path<String>,
    body: Bytes,
) -> Reply {
    refund_inner(&shared, &headers, &reference, &body).unwrap_or_else(|refused| refused)
}

fn refund_inner(
    shared: &Shared,
    headers: &HeaderMap,
    reference: &str,
    body: &[u8],
) -> Result<Reply, Reply> {
    let (language, key, body) = checked_write(shared, headers, body)?;
    let request_print = format!("refund:{reference}:{body}");
    let mut ledger = shared.ledger();
    if let Some(answer) = replayed(&ledger, &key, &request_print) {
        return answer;
    }
    let reason = body
        .get("reason")
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim()
        .to_owned();
    if reason.is_empty() {
        let error = json!({"field": "reason", "message": language.pick("reason is required", "reason est obligatoire")});
        return Err(reply(
            StatusCode::UNPROCESSABLE_ENTITY,
            error_json(
                422,
                "Unprocessable Entity",
                "Validation failed",
                vec![error],
            ),
        ));
    }
    let shape = shared.config.shape;
    let Some(payin) = ledger.find_mut(reference) else {
        return Err(refuse(
            StatusCode::NOT_FOUND,
            "Not Found",
            language.pick("payin not found", "paiement introuvable"),
        ));
    };
    if payin.refund.is_some() {
        let message = language.pick("payin already refunded", "paiement déjà remboursé");
        return Err(refuse(StatusCode::CONFLICT, "Conflict", message));
    }
    if !payin.is_refundable() {
        let message = language.pick(
            "only a completed payin can be refunded",
            "seul un paiement abouti peut être remboursé",
        );
        return Err(refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Unprocessable Entity",
            message,
        ));
    }
    let amount = match body.get("amount") {
        None | Some(Value::Null) => payin.amount,
        Some(value) => match value.as_i64() {
            Some(a) if (1..=payin.amount).contains(&a) => a,
            _ => {
                let message = language.pick(
                    "amount must be between 1 and the payin amount",
                    "amount doit être compris entre 1 et le montant du paiement",
                );
                return Err(refuse(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Unprocessable Entity",
                    message,
                ));
            }
        },
    };
    let refund = SandboxRefund {
        reference: new_id("rf"),
        amount,
        reason,
        external_reference: body
            .get("externalReference")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        partial: amount < payin.amount,
        created_at: Utc::now(),
    };
    let rendered = payin.refund_json(&refund, shape);
    payin.refund = Some(refund);
    ledger
        .replies
        .insert(key, (request_print, 201, rendered.clone()));
    Ok(reply(StatusCode::CREATED, rendered))
}

async fn payment_page(State(shared): State<Arc<Shared>>, Path(token): Path<String>) -> Response {
    match shared.ledger().find(&token) {
        Some(payin) if payin.token == token => Html(page::render(payin)).into_response(),
        _ => (
            StatusCode::NOT_FOUND,
            Html("<!doctype html><p>Unknown payment link.</p>".to_owned()),
        )
            .into_response(),
    }
}

async fn accept(State(shared): State<Arc<Shared>>, Path(token): Path<String>) -> Response {
    let d = shared.config.step_delay;
    answer(
        &shared,
        &token,
        Step::Accept,
        vec![(d, Step::Process), (d, Step::Complete)],
    )
}

async fn decline(State(shared): State<Arc<Shared>>, Path(token): Path<String>) -> Response {
    answer(&shared, &token, Step::Decline, vec![])
}

/// The payer's click: the step now, what follows later, and back to the page.
fn answer(shared: &Arc<Shared>, token: &str, step: Step, then: Vec<(Duration, Step)>) -> Response {
    let Some(id) = shared
        .ledger()
        .find(token)
        .filter(|p| p.token == token)
        .map(|p| p.id.clone())
    else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if apply(shared, &id, step) {
        schedule(shared.clone(), id, then);
    }
    Redirect::to(&format!("/pay/{token}")).into_response()
}

/// Applies a step and sends its webhook. `false`: the step no longer applied.
fn apply(shared: &Arc<Shared>, id: &str, step: Step) -> bool {
    let mut ledger = shared.ledger();
    let Some(payin) = ledger.payins.get_mut(id) else {
        return false;
    };
    let Some(event) = payin.advance(step, Utc::now()) else {
        return false;
    };
    let data = shared.render(payin);
    drop(ledger);
    send_webhook(shared.clone(), event, data);
    true
}

/// Plays a payin's next steps in the background, each after its delay; stops at the first
/// step that no longer applies (the payer answered meanwhile).
fn schedule(shared: Arc<Shared>, id: String, plan: Vec<(Duration, Step)>) {
    if plan.is_empty() {
        return;
    }
    tokio::spawn(async move {
        for (delay, step) in plan {
            tokio::time::sleep(delay).await;
            if !apply(&shared, &id, step) {
                return;
            }
        }
    });
}

fn send_webhook(shared: Arc<Shared>, event: &'static str, data: Value) {
    let Some(url) = shared.config.webhook_url.clone() else {
        return;
    };
    tokio::spawn(async move {
        let body = json!({ "event": event, "data": data }).to_string();
        let mut request = shared
            .webhooks
            .post(url)
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(secret) = &shared.config.webhook_secret {
            request = request.header(SIGNATURE_HEADER, sign(secret, body.as_bytes()));
        }
        match request.body(body).send().await {
            Ok(response) => tracing::debug!(
                event,
                status = response.status().as_u16(),
                "sandbox webhook delivered"
            ),
            Err(e) => tracing::warn!(event, "sandbox webhook not delivered: {}", e.without_url()),
        }
    });
}

async fn inject_faults(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let fault = shared
        .faults()
        .pick(request.method().as_str(), request.uri().path());
    let Some(fault) = fault else {
        return next.run(request).await;
    };
    tracing::info!(kind = ?fault.kind, path = request.uri().path(), "sandbox fault injected");
    match fault.kind {
        FaultKind::Latency => {
            tokio::time::sleep(fault.latency()).await;
            next.run(request).await
        }
        FaultKind::Status => {
            let status = StatusCode::from_u16(fault.status.unwrap_or(500))
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            refuse(
                status,
                status.canonical_reason().unwrap_or("Error"),
                "injected fault",
            )
            .into_response()
        }
        FaultKind::Drop => dropped_connection(),
        FaultKind::DropAfter => {
            let _processed = next.run(request).await;
            dropped_connection()
        }
        FaultKind::Malformed => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            "{\"id\": \"pr_",
        )
            .into_response(),
    }
}

/// A response whose body fails at once: the connection is cut before any answer arrives.
fn dropped_connection() -> Response {
    let failing = futures_util::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "injected drop",
        ))
    });
    Response::new(Body::from_stream(failing))
}

async fn list_faults(State(shared): State<Arc<Shared>>) -> Json<Vec<Fault>> {
    Json(shared.faults().list())
}

async fn add_fault(State(shared): State<Arc<Shared>>, Json(fault): Json<Fault>) -> Reply {
    match fault.check() {
        Ok(()) => {
            shared.faults().add(fault);
            reply(StatusCode::CREATED, json!({ "added": true }))
        }
        Err(e) => refuse(StatusCode::BAD_REQUEST, "Bad Request", &e),
    }
}

async fn clear_faults(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.faults().clear();
    StatusCode::NO_CONTENT
}
