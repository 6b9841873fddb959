//! HUB2's API (contract §9): headers `ApiKey`, `MerchantId`, `Environment`; no idempotency
//! header, so the payment attempt, the step that may move money, is only ever sent while
//! the intent shows none.

use super::wire::{self, Intent};
use super::{Hub2Config, NAME};
use crate::domain::{CreatePayinCommand, Language, ProviderPayin, Refund, Violation, Violations};
use crate::provider::http_client::{Endpoint, ProviderHttp, read_with_retries};
use crate::provider::{
    IncomingWebhook, PayinLookup, PaymentProvider, ProviderError, RefundOrder, redact_phone_numbers,
};
use async_trait::async_trait;
use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use uuid::Uuid;

const DISPLAY_NAME: &str = "HUB2";

#[derive(Debug, Clone, Copy)]
enum Operation {
    CreateIntent,
    Pay,
    GetIntent,
    Authenticate,
}

impl Operation {
    fn endpoint(self) -> Endpoint {
        let (method, template, operation) = match self {
            Self::CreateIntent => (Method::POST, "/payment-intents", "create_intent"),
            Self::Pay => (Method::POST, "/payment-intents/{id}/payments", "pay"),
            Self::GetIntent => (Method::GET, "/payment-intents/{id}", "get_intent"),
            Self::Authenticate => (
                Method::POST,
                "/payment-intents/{id}/authentication",
                "authenticate",
            ),
        };
        Endpoint {
            method,
            template,
            operation,
        }
    }
}

pub struct Hub2Client {
    http: ProviderHttp,
    config: Hub2Config,
}

impl Hub2Client {
    pub fn new(config: Hub2Config) -> Result<Self, String> {
        let http = ProviderHttp::new(
            (NAME, DISPLAY_NAME),
            config.base_url.clone(),
            config.timeout,
        )?;
        Ok(Self { http, config })
    }

    async fn send(
        &self,
        operation: Operation,
        url: url::Url,
        body: Option<Value>,
        language: Language,
    ) -> Result<(StatusCode, bytes::Bytes), ProviderError> {
        self.http
            .send(operation.endpoint(), url, |request| {
                let request = request
                    .header("ApiKey", self.config.api_key.expose_secret())
                    .header("MerchantId", self.config.merchant_id.expose_secret())
                    .header("Environment", self.config.environment.as_str())
                    .header(reqwest::header::ACCEPT, "application/json")
                    .header(reqwest::header::ACCEPT_LANGUAGE, language.code());
                match body {
                    Some(body) => request.json(&body),
                    None => request,
                }
            })
            .await
    }

    /// A write's answer: the intent it returns, or what its refusal means.
    async fn write(
        &self,
        operation: Operation,
        url: url::Url,
        body: Value,
        language: Language,
    ) -> Result<Intent, ProviderError> {
        let (status, bytes) = self.send(operation, url, Some(body), language).await?;
        if !status.is_success() {
            return Err(error_for(status, &bytes));
        }
        wire::parse_intent(&bytes).map_err(malformed)
    }

    /// `GET /payment-intents/{id}`, retried briefly as reads are.
    async fn intent(&self, id: &str, language: Language) -> Result<Option<Intent>, ProviderError> {
        let url = self.http.url(&["payment-intents", id]);
        let attempt = || async {
            let (status, bytes) = self
                .send(Operation::GetIntent, url.clone(), None, language)
                .await?;
            match status {
                StatusCode::NOT_FOUND => Ok(None),
                s if s.is_success() => wire::parse_intent(&bytes).map(Some).map_err(malformed),
                s => Err(error_for(s, &bytes)),
            }
        };
        read_with_retries(attempt).await
    }

    /// The intent `id`, which must exist: the payin was opened on it.
    async fn existing_intent(&self, id: &str, language: Language) -> Result<Intent, ProviderError> {
        self.intent(id, language)
            .await?
            .ok_or_else(|| ProviderError::NotFound(format!("payment intent {id}")))
    }
}

#[async_trait]
impl PaymentProvider for Hub2Client {
    fn name(&self) -> &'static str {
        NAME
    }

    fn display_name(&self) -> &'static str {
        DISPLAY_NAME
    }

    fn credential_settings(&self) -> &'static [&'static str] {
        &["HUB2_API_KEY", "HUB2_MERCHANT_ID"]
    }

    fn webhooks(&self) -> &dyn IncomingWebhook {
        &super::webhook::Hub2Webhooks
    }

    fn check(&self, command: &CreatePayinCommand) -> Violations {
        let mut violations = Violations::default();
        if command.operator.is_none() {
            violations.add("operator", Violation::Required);
        }
        violations
    }

    /// Step 1: the intent. It charges no one, so an unknown outcome may leave an orphan
    /// intent and nothing else (HUB2 has no idempotency key to find it again).
    async fn create_payin(
        &self,
        command: &CreatePayinCommand,
        _idempotency_key: Uuid,
        language: Language,
    ) -> Result<ProviderPayin, ProviderError> {
        let body = json!({
            "customerReference": command.msisdn.expose(),
            "purchaseReference": command.reference.as_str(),
            "amount": command.amount,
            "currency": command.currency,
        });
        let url = self.http.url(&["payment-intents"]);
        let intent = self
            .write(Operation::CreateIntent, url, body, language)
            .await?;
        Ok(intent.payin)
    }

    async fn get_payin(
        &self,
        lookup: PayinLookup<'_>,
        language: Language,
    ) -> Result<Option<ProviderPayin>, ProviderError> {
        // HUB2 is asked by its intent id only.
        let Some(id) = lookup.provider_reference else {
            return Ok(None);
        };
        Ok(self.intent(id, language).await?.map(|i| i.payin))
    }

    fn pays_separately(&self) -> bool {
        true
    }

    /// Step 2: the payment attempt, sent only while the intent shows none; an unknown
    /// outcome is reconciled through `payments[]` at once.
    async fn pay(
        &self,
        command: &CreatePayinCommand,
        provider_reference: &str,
        language: Language,
    ) -> Result<ProviderPayin, ProviderError> {
        let intent = self.existing_intent(provider_reference, language).await?;
        if intent.attempts > 0 {
            return Ok(intent.payin);
        }
        let mut mobile_money = json!({ "msisdn": command.msisdn.expose() });
        for (key, url) in [
            ("onSuccessRedirectionUrl", &command.success_url),
            ("onFailedRedirectionUrl", &command.failure_url),
        ] {
            if !url.is_empty() {
                mobile_money[key] = json!(url);
            }
        }
        let body = json!({
            "token": intent.token,
            "paymentMethod": "mobile_money",
            "country": command.country,
            "provider": command.operator.map(|o| o.as_str()).unwrap_or_default(),
            "mobileMoney": mobile_money,
        });
        let url = self
            .http
            .url(&["payment-intents", provider_reference, "payments"]);
        match self.write(Operation::Pay, url, body, language).await {
            Ok(paying) => Ok(paying.payin),
            // No verdict, or HUB2 says an attempt exists already (ours, under way): what
            // `payments[]` shows now is the answer, when it shows one.
            Err(e) if e.may_have_acted() || matches!(e, ProviderError::Conflict(_)) => {
                match self.intent(provider_reference, language).await {
                    Ok(Some(seen)) if seen.attempts > 0 => Ok(seen.payin),
                    _ => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    async fn confirm(
        &self,
        provider_reference: &str,
        code: &str,
        language: Language,
    ) -> Result<ProviderPayin, ProviderError> {
        let intent = self.existing_intent(provider_reference, language).await?;
        let body = json!({ "token": intent.token, "confirmationCode": code });
        let url = self
            .http
            .url(&["payment-intents", provider_reference, "authentication"]);
        let confirmed = self
            .write(Operation::Authenticate, url, body, language)
            .await?;
        Ok(confirmed.payin)
    }

    fn refunds_payins(&self) -> bool {
        false
    }

    async fn refund(
        &self,
        _reference: &str,
        _order: &RefundOrder,
        _idempotency_key: Uuid,
        _language: Language,
    ) -> Result<Refund, ProviderError> {
        Err(ProviderError::Unsupported("refunds"))
    }

    fn reachable(&self) -> Option<bool> {
        self.http.reachable()
    }
}

/// Maps a non-success HTTP answer to the error it means for us (§9: as §4, with HUB2).
fn error_for(status: StatusCode, body: &[u8]) -> ProviderError {
    let message = error_message(body, status.as_u16());
    tracing::info!(status = status.as_u16(), message, "hub2 refused");
    match status.as_u16() {
        400 | 422 => ProviderError::Rejected(message),
        401 | 403 => ProviderError::Credentials(status.as_u16()),
        404 => ProviderError::NotFound(message),
        409 => ProviderError::Conflict(message),
        429 => ProviderError::RateLimited(message),
        500..=599 => ProviderError::OutcomeUnknown(format!("HUB2 answered {status}: {message}")),
        other => ProviderError::Unexpected {
            status: other,
            message,
        },
    }
}

/// HUB2's error message (`message`, or `error`), phone numbers masked.
fn error_message(body: &[u8], status: u16) -> String {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let text = parsed
        .as_ref()
        .and_then(|v| {
            ["message", "error"]
                .iter()
                .find_map(|k| v.get(*k).and_then(Value::as_str))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| format!("HTTP {status}"));
    redact_phone_numbers(&text)
}

fn malformed(what: String) -> ProviderError {
    tracing::warn!(what, "malformed hub2 response");
    ProviderError::Malformed(what)
}
