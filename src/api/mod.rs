//! The gRPC face of the service: request parsing, language, idempotency, status mapping.

pub mod auth;
pub mod codec;
mod convert;
pub mod error;
mod idempotency;
pub mod stream;

use crate::domain::{
    ConfirmPayinCommand, Countries, CreatePayinCommand, IdempotencyKey, Language, RefundCommand,
    Violation, Violations,
};
use crate::domain::{CreatePayinInput, IDEMPOTENCY_METADATA, parse_lookup_reference};
use crate::payments::{Payments, PaymentsError};
use crate::proto as pb;
use crate::proto::payments_service_server::PaymentsService;
use crate::provider::PaymentProvider;
use crate::store::IdempotencyScope;
use crate::store::attempt::Attempt;
use crate::telemetry::metrics::{RPC_DURATION, RPC_REQUESTS, SHED};
use idempotency::IdempotentCall;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tonic::{Request, Response, Status};

pub struct PaymentsApi {
    payments: Payments,
    countries: Arc<Countries>,
    streams: stream::Streams,
    /// Calls in progress on this replica, whatever their connection: the bound beyond which
    /// a call is shed (RESOURCE_EXHAUSTED) before any work.
    in_flight: Arc<Semaphore>,
}

impl PaymentsApi {
    pub fn new(payments: Payments, countries: Countries, streams: stream::Streams) -> Self {
        Self {
            payments,
            countries: Arc::new(countries),
            streams,
            in_flight: Arc::new(Semaphore::new(Semaphore::MAX_PERMITS)),
        }
    }

    pub fn with_max_in_flight(self, max: usize) -> Self {
        Self {
            in_flight: Arc::new(Semaphore::new(max.min(Semaphore::MAX_PERMITS))),
            ..self
        }
    }

    /// Runs one RPC within the replica's bound on calls in progress. Callers box `call`: a
    /// future passed through async layers is copied into each of them (rust-lang/rust#62958),
    /// and a create's grew to 92 KB, copied several times per call.
    async fn bounded<R>(
        &self,
        method: &'static str,
        metadata: &tonic::metadata::MetadataMap,
        call: impl Future<Output = Result<R, Status>>,
    ) -> Result<R, Status> {
        let Ok(_permit) = self.in_flight.try_acquire() else {
            metrics::counter!(SHED, "reason" => "in_flight").increment(1);
            let refused = Err(error::overloaded(metadata_language(metadata)));
            return observed(method, metadata, async { refused }).await;
        };
        observed(method, metadata, call).await
    }
}

fn language_of<T>(request: &Request<T>) -> Language {
    metadata_language(request.metadata())
}

fn metadata_language(metadata: &tonic::metadata::MetadataMap) -> Language {
    metadata
        .get("accept-language")
        .and_then(|v| v.to_str().ok())
        .map(Language::from_accept_language)
        .unwrap_or_default()
}

/// The idempotency key from the field or the metadata; its violation joins the others.
fn idempotency_key<T>(
    request: &Request<T>,
    field: &str,
    violations: &mut Violations,
) -> Option<IdempotencyKey> {
    let metadata = match request
        .metadata()
        .get(IDEMPOTENCY_METADATA)
        .map(|v| v.to_str())
    {
        None => Ok(None),
        Some(Ok(value)) => Ok(Some(value)),
        Some(Err(_)) => Err(Violation::IdempotencyKeyFormat),
    };
    metadata
        .and_then(|metadata| IdempotencyKey::from_field_or_metadata(field, metadata))
        .map_err(|violation| {
            violations.0.push(crate::domain::FieldViolation {
                field: "idempotency_key",
                violation,
            })
        })
        .ok()
}

const SERVICE: &str = "payments.v1.PaymentsService";

/// Runs one RPC inside its server span (continuing the caller's trace, if any) and counts it
/// by method and status code.
async fn observed<R>(
    method: &'static str,
    metadata: &tonic::metadata::MetadataMap,
    call: impl Future<Output = Result<R, Status>>,
) -> Result<R, Status> {
    use tracing::Instrument;
    let span = tracing::info_span!(
        "rpc",
        otel.name = %format_args!("{SERVICE}/{method}"),
        otel.kind = "server",
        rpc.system = "grpc",
        rpc.service = SERVICE,
        rpc.method = method,
        rpc.grpc.status_code = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    crate::telemetry::propagation::continue_trace(&span, metadata);
    let started = std::time::Instant::now();
    let result = call.instrument(span.clone()).await;
    let code = result
        .as_ref()
        .map_or_else(Status::code, |_| tonic::Code::Ok);
    span.record("rpc.grpc.status_code", code as i32);
    if code != tonic::Code::Ok {
        span.record("otel.status_code", "ERROR");
    }
    metrics::counter!(RPC_REQUESTS, "method" => method, "code" => code_name(code)).increment(1);
    metrics::histogram!(RPC_DURATION, "method" => method).record(started.elapsed().as_secs_f64());
    result
}

/// The code as metrics label it (tonic's own names, without an allocation per call).
fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "Ok",
        Cancelled => "Cancelled",
        Unknown => "Unknown",
        InvalidArgument => "InvalidArgument",
        DeadlineExceeded => "DeadlineExceeded",
        NotFound => "NotFound",
        AlreadyExists => "AlreadyExists",
        PermissionDenied => "PermissionDenied",
        ResourceExhausted => "ResourceExhausted",
        FailedPrecondition => "FailedPrecondition",
        Aborted => "Aborted",
        OutOfRange => "OutOfRange",
        Unimplemented => "Unimplemented",
        Internal => "Internal",
        Unavailable => "Unavailable",
        DataLoss => "DataLoss",
        Unauthenticated => "Unauthenticated",
    }
}

#[tonic::async_trait]
impl PaymentsService for PaymentsApi {
    async fn create_payin(
        &self,
        request: Request<pb::CreatePayinRequest>,
    ) -> Result<Response<pb::Payin>, Status> {
        let metadata = request.metadata().clone();
        self.bounded(
            "CreatePayin",
            &metadata,
            Box::pin(self.create_payin_call(request)),
        )
        .await
    }

    async fn get_payin(
        &self,
        request: Request<pb::GetPayinRequest>,
    ) -> Result<Response<pb::Payin>, Status> {
        let metadata = request.metadata().clone();
        self.bounded(
            "GetPayin",
            &metadata,
            Box::pin(self.get_payin_call(request)),
        )
        .await
    }

    type StreamPayinUpdatesStream = stream::UpdateStream;

    async fn stream_payin_updates(
        &self,
        request: Request<pb::StreamPayinUpdatesRequest>,
    ) -> Result<Response<Self::StreamPayinUpdatesStream>, Status> {
        let metadata = request.metadata().clone();
        // Open streams are bounded by PAYMENTS_MAX_STREAMS. Opening one reads its snapshot,
        // which is work in progress like a unary call: it waits for a place among them
        // (bounded by the request timeout) instead of being shed, since thousands of watchers
        // may legitimately open at once.
        let Ok(_permit) = self.in_flight.acquire().await else {
            return Err(Status::unavailable("the server is shutting down"));
        };
        observed("StreamPayinUpdates", &metadata, self.stream_call(request)).await
    }

    async fn refund(
        &self,
        request: Request<pb::RefundRequest>,
    ) -> Result<Response<pb::Refund>, Status> {
        let metadata = request.metadata().clone();
        self.bounded("Refund", &metadata, Box::pin(self.refund_call(request)))
            .await
    }

    async fn confirm_payin(
        &self,
        request: Request<pb::ConfirmPayinRequest>,
    ) -> Result<Response<pb::Payin>, Status> {
        let metadata = request.metadata().clone();
        self.bounded(
            "ConfirmPayin",
            &metadata,
            Box::pin(self.confirm_payin_call(request)),
        )
        .await
    }
}

impl PaymentsApi {
    async fn confirm_payin_call(
        &self,
        request: Request<pb::ConfirmPayinRequest>,
    ) -> Result<Response<pb::Payin>, Status> {
        let language = language_of(&request);
        let r = request.get_ref();
        let parsed = ConfirmPayinCommand::parse(&r.reference, &r.code);
        let mut violations = parsed.as_ref().err().cloned().unwrap_or_default();
        let key = idempotency_key(&request, &r.idempotency_key, &mut violations);
        let (Ok(command), Some(key), true) = (parsed, key, violations.0.is_empty()) else {
            return Err(error::invalid_request(&violations, language));
        };
        tracing::info!(reference = command.reference.as_str(), "confirm payin");
        let call = IdempotentCall {
            operation: "confirm",
            key: key.as_str().to_owned(),
            fingerprint: command.fingerprint(),
            claims_reference: None,
        };
        self.idempotent(call, language, move |payments, attempt| async move {
            let payin = payments.confirm(&command, &attempt, language).await?;
            Ok(convert::payin(&payin))
        })
        .await
    }

    /// The provider that takes `command` (§9): the router's, checked by that provider; or,
    /// for a request its key already recorded, the provider it went to then, whatever the
    /// routes say now (a retry or a replay must not be refused, nor sent elsewhere).
    async fn provider_for(
        &self,
        command: &CreatePayinCommand,
        key: &IdempotencyKey,
        language: Language,
    ) -> Result<Arc<dyn PaymentProvider>, Status> {
        let providers = self.payments.providers();
        let refused = match providers.route(command) {
            Ok(provider) => return Ok(provider.clone()),
            Err(violations) => violations,
        };
        let scope = IdempotencyScope {
            operation: "create",
            key: key.as_str(),
        };
        let recorded = self
            .payments
            .store()
            .recorded_provider(scope, &command.fingerprint())
            .await
            .ok()
            .flatten();
        match recorded.and_then(|name| providers.get(&name).cloned()) {
            Some(provider) => Ok(provider),
            None => Err(error::invalid_request(&refused, language)),
        }
    }

    /// Runs `work` under the idempotency record of `call` (contract §3).
    async fn idempotent<M, W, Fut>(
        &self,
        call: IdempotentCall,
        language: Language,
        work: W,
    ) -> Result<Response<M>, Status>
    where
        M: prost::Message + Default + 'static,
        W: FnOnce(Payments, Attempt) -> Fut + Send + 'static,
        Fut: Future<Output = Result<M, PaymentsError>> + Send,
    {
        let payments = self.payments.clone();
        let (store, settings) = (payments.store().clone(), payments.settings().clone());
        idempotency::run(store, &settings, call, language, move |attempt| {
            work(payments, attempt)
        })
        .await
        .map(Response::new)
    }

    async fn create_payin_call(
        &self,
        request: Request<pb::CreatePayinRequest>,
    ) -> Result<Response<pb::Payin>, Status> {
        let language = language_of(&request);
        let r = request.get_ref();
        let provider = convert::requested_provider(r.provider);
        let parsed = CreatePayinCommand::parse(
            &CreatePayinInput {
                reference: &r.reference,
                amount: r.amount,
                msisdn: &r.msisdn,
                customer_name: &r.customer_name,
                country: &r.country,
                currency: &r.currency,
                account_id: &r.account_id,
                success_url: &r.success_url,
                failure_url: &r.failure_url,
                provider: provider.as_deref().unwrap_or_default(),
                operator: &r.operator,
            },
            &self.countries,
        );
        let mut violations = parsed.as_ref().err().cloned().unwrap_or_default();
        let key = idempotency_key(&request, &r.idempotency_key, &mut violations);
        let (Ok(command), Some(key), true) = (parsed, key, violations.0.is_empty()) else {
            return Err(error::invalid_request(&violations, language));
        };
        let provider = self.provider_for(&command, &key, language).await?;
        tracing::info!(reference = command.reference.as_str(), msisdn = %command.msisdn, amount = command.amount, "create payin");
        let call = IdempotentCall {
            operation: "create",
            key: key.as_str().to_owned(),
            fingerprint: command.fingerprint(),
            claims_reference: Some((command.reference.as_str().to_owned(), provider.name())),
        };
        self.idempotent(call, language, move |payments, attempt| async move {
            attempt.answers_with(|payin| prost::Message::encode_to_vec(&convert::payin(payin)));
            let payin = payments
                .create(&command, &provider, &attempt, language)
                .await?;
            Ok(convert::payin(&payin))
        })
        .await
    }

    async fn get_payin_call(
        &self,
        request: Request<pb::GetPayinRequest>,
    ) -> Result<Response<pb::Payin>, Status> {
        let language = language_of(&request);
        let r = request.get_ref();
        let reference = parse_lookup_reference(&r.reference)
            .map_err(|v| error::invalid_request(&v, language))?;
        let payin = self
            .payments
            .get(reference.as_str(), r.refresh, language)
            .await
            .map_err(|e| error::to_status(&e, language))?;
        Ok(Response::new(convert::payin(&payin)))
    }

    async fn stream_call(
        &self,
        request: Request<pb::StreamPayinUpdatesRequest>,
    ) -> Result<Response<stream::UpdateStream>, Status> {
        let language = language_of(&request);
        let reference = parse_lookup_reference(&request.get_ref().reference)
            .map_err(|v| error::invalid_request(&v, language))?;
        let updates =
            stream::open(&self.payments, &self.streams, reference.as_str(), language).await?;
        Ok(Response::new(updates))
    }

    async fn refund_call(
        &self,
        request: Request<pb::RefundRequest>,
    ) -> Result<Response<pb::Refund>, Status> {
        let language = language_of(&request);
        let r = request.get_ref();
        let parsed = RefundCommand::parse(&r.reference, &r.reason, &r.external_reference, r.amount);
        let mut violations = parsed.as_ref().err().cloned().unwrap_or_default();
        let key = idempotency_key(&request, &r.idempotency_key, &mut violations);
        let (Ok(command), Some(key), true) = (parsed, key, violations.0.is_empty()) else {
            return Err(error::invalid_request(&violations, language));
        };
        tracing::info!(
            reference = command.reference.as_str(),
            amount = command.amount,
            "refund"
        );
        let call = IdempotentCall {
            operation: "refund",
            key: key.as_str().to_owned(),
            fingerprint: command.fingerprint(),
            claims_reference: None,
        };
        self.idempotent(call, language, move |payments, attempt| async move {
            let refund = payments.refund(&command, &attempt, language).await?;
            Ok(convert::refund(&refund))
        })
        .await
    }
}
