//! I5, after quiescence: what GetPayin says equals what the provider says, for every payin a
//! client was told about.

use super::calls::{Calls, is_transient};
use super::record::{Op, Recorder};
use super::world::{API_CLIENT, API_KEY};
use payments_gateway::proto::{GetPayinRequest, PayinStatus};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;
use tonic::Code;

/// The provider's state of each payin it knows, and the status the contract derives from it.
pub type ProviderTruth = HashMap<String, (Value, PayinStatus)>;

/// Contract §2: from Novasend's layered fields to one status, first matching row wins.
pub fn derive_status(payin: &Value) -> PayinStatus {
    let text = |pointer: &str| payin.pointer(pointer).and_then(Value::as_str).unwrap_or("");
    let failure = payin
        .get("failure")
        .and_then(Value::as_object)
        .is_some_and(|f| !f.is_empty());
    let confirmation = text("/confirmationStatus");
    if failure || text("/transaction/status") == "failed" {
        PayinStatus::Failed
    } else if text("/transaction/status") == "completed" {
        PayinStatus::Succeeded
    } else if confirmation == "declined" {
        PayinStatus::Declined
    } else if text("/status") == "expired" || confirmation == "expired" {
        PayinStatus::Expired
    } else if confirmation == "accepted" || text("/status") == "processed" {
        PayinStatus::Processing
    } else if payin["confirmationRequired"].as_bool() == Some(true) {
        PayinStatus::AwaitingConfirmation
    } else {
        PayinStatus::Pending
    }
}

/// The sandbox's GET, straight (no proxy, no fault): the provider's truth.
pub async fn provider_truth(
    http: &reqwest::Client,
    sandbox_url: &str,
    references: &BTreeSet<String>,
) -> ProviderTruth {
    let mut truth = HashMap::new();
    for reference in references {
        let response = http
            .get(format!("{sandbox_url}/v1/payin/{reference}"))
            .basic_auth(API_KEY, Some(API_CLIENT))
            .send()
            .await;
        let Ok(response) = response else { continue };
        if response.status().is_success()
            && let Ok(payin) = response.json::<Value>().await
        {
            let status = derive_status(&payin);
            truth.insert(reference.clone(), (payin, status));
        }
    }
    truth
}

/// Every reference some CreatePayin answered OK for.
pub fn created_references(recorder: &Recorder) -> BTreeSet<String> {
    recorder
        .calls()
        .into_iter()
        .filter(|c| c.op == Op::Create && c.answer.as_ref().is_some_and(|a| a.code == Code::Ok))
        .map(|c| c.reference)
        .collect()
}

/// I5 for each created reference; the violations found.
pub async fn check_against_provider(
    calls: &Calls,
    truth: &ProviderTruth,
    references: &BTreeSet<String>,
) -> Vec<String> {
    let mut violations = Vec::new();
    let known = calls.recorder.references();
    let wipes = calls.recorder.wipes();
    for (n, reference) in references.iter().enumerate() {
        let forgotten_by_redis = known
            .get(reference)
            .is_none_or(|info| info.first_epoch != wipes);
        let answer = get_after_quiet(calls, reference, n).await;
        let provider = truth.get(reference);
        let problem = match (answer, provider) {
            (Ok(payin), Some((json, status))) => {
                let provider_id = json["id"].as_str().unwrap_or("");
                (payin.status() != *status || payin.provider_reference != provider_id).then(|| {
                    format!(
                        "GetPayin says {:?} / {}, the provider {:?} / {provider_id} (raw status {}, confirmation {}, transaction {})",
                        payin.status(),
                        payin.provider_reference,
                        status,
                        json["status"],
                        json["confirmationStatus"],
                        json["transaction"]["status"]
                    )
                })
            }
            (Ok(payin), None) => Some(format!(
                "GetPayin says {:?}, the provider has no such payin",
                payin.status()
            )),
            (Err(code), _) if code == Code::NotFound && forgotten_by_redis => None,
            (Err(code), provider) => Some(format!(
                "GetPayin answered {code:?} after quiescence (provider: {:?})",
                provider.map(|(_, s)| s)
            )),
        };
        if let Some(problem) = problem {
            violations.push(format!("{reference}: {problem}"));
        }
    }
    violations
}

/// GetPayin from the cache (no refresh), a few tries on transient codes.
async fn get_after_quiet(
    calls: &Calls,
    reference: &str,
    n: usize,
) -> Result<payments_gateway::proto::Payin, Code> {
    let mut last = Code::Unknown;
    for attempt in 0..4 {
        let replica = (n + attempt) % calls.replicas();
        let request = GetPayinRequest {
            reference: reference.to_owned(),
            refresh: false,
        };
        let answered = calls
            .attempt(Op::Get, reference, None, replica, |mut client| async move {
                client.get_payin(request).await
            })
            .await;
        match answered {
            Some((Ok(payin), _)) => return Ok(payin),
            Some((result, _)) if !is_transient(&result) => {
                return Err(result.err().map_or(Code::Unknown, |s| s.code()));
            }
            Some((result, _)) => last = result.err().map_or(Code::Unknown, |s| s.code()),
            None => last = Code::DeadlineExceeded,
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(last)
}
