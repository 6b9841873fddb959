//! Calls the bench makes to set things up: payins created through the service, the
//! sandbox's request counts, a payment accepted on the sandbox's page.

use crate::proto::payments_service_client::PaymentsServiceClient;
use crate::proto::{CreatePayinRequest, Payin, PayinUpdate, StreamPayinUpdatesRequest};
use futures_util::StreamExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tonic::transport::Channel;

/// A payer that waits for the payment page (no magic number): the payin stays put.
pub const WAITING_MSISDN: &str = "+2250700000042";
/// Magic: accepted, processed, completed by the sandbox itself, a step delay apart.
pub const SUCCEEDS_MSISDN: &str = "+2250700000000";
/// Magic: never answers, never expires.
pub const SILENT_MSISDN: &str = "+2250700000004";

pub fn create_request(reference: &str, msisdn: &str) -> CreatePayinRequest {
    CreatePayinRequest {
        reference: reference.to_owned(),
        amount: 300,
        msisdn: msisdn.to_owned(),
        customer_name: "Awa Kone".into(),
        country: "CI".into(),
        idempotency_key: format!("key-{reference}"),
        ..CreatePayinRequest::default()
    }
}

/// Creates `count` payins `<prefix>-<i>` with `in_flight` calls at a time over `channels`;
/// any failure stops it. Bounded by `within`.
pub async fn create_many(
    channels: &[Channel],
    prefix: &str,
    count: usize,
    msisdn: &str,
    in_flight: usize,
    within: Duration,
) -> Result<Vec<Payin>, String> {
    let calls = futures_util::stream::iter(0..count)
        .map(|i| {
            let mut client = PaymentsServiceClient::new(channels[i % channels.len()].clone());
            let request = create_request(&format!("{prefix}-{i}"), msisdn);
            async move { client.create_payin(request).await }
        })
        .buffered(in_flight)
        .collect::<Vec<_>>();
    let answers = tokio::time::timeout(within, calls)
        .await
        .map_err(|_| format!("creating {count} payins took more than {within:?}"))?;
    answers
        .into_iter()
        .map(|a| {
            a.map(tonic::Response::into_inner)
                .map_err(|s| format!("CreatePayin failed: {:?} {}", s.code(), s.message()))
        })
        .collect()
}

/// The pause before attempt `attempt + 1`: half the exponential step, plus a pseudo-random
/// share of the other half (seeded per process, reference and attempt).
pub fn backoff(reference: &str, attempt: u32) -> Duration {
    use std::hash::BuildHasher;
    static SEED: std::sync::OnceLock<std::collections::hash_map::RandomState> =
        std::sync::OnceLock::new();
    let step = FIRST_BACKOFF
        .saturating_mul(1u32 << attempt.min(16))
        .min(LONGEST_BACKOFF);
    let draw = SEED
        .get_or_init(Default::default)
        .hash_one((reference, attempt))
        % 1000;
    step / 2 + step / 2 * u32::try_from(draw).unwrap_or(0) / 1000
}

/// The token at the end of a sandbox payment URL (`…/pay/<token>`).
pub fn payment_token(payment_url: &str) -> Option<&str> {
    payment_url.rsplit_once("/pay/").map(|(_, token)| token)
}

/// How many requests the sandbox has served on `route` (e.g. `GET /v1/payin/{reference}`).
pub async fn sandbox_requests(
    http: &reqwest::Client,
    base_url: &str,
    route: &str,
) -> Result<u64, String> {
    let url = format!("{base_url}/_sandbox/stats");
    let body: serde_json::Value = tokio::time::timeout(Duration::from_secs(5), async {
        http.get(&url)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await
    })
    .await
    .map_err(|_| format!("{url}: no answer within 5 s"))?
    .map_err(|e| format!("{url}: {e}"))?;
    Ok(body["requests"][route].as_u64().unwrap_or(0))
}

pub const GET_PAYIN_ROUTE: &str = "GET /v1/payin/{reference}";

/// How often a stream refused with RESOURCE_EXHAUSTED is opened again, and the backoff.
const RETRIES: u32 = 30;
const FIRST_BACKOFF: Duration = Duration::from_millis(25);
const LONGEST_BACKOFF: Duration = Duration::from_secs(1);

/// A stream and its SNAPSHOT, opened as a well-behaved caller does: RESOURCE_EXHAUSTED
/// (the replica sheds) is tried again after an exponential backoff with jitter (25 ms
/// doubling to 1 s, each pause drawn in its upper half), up to `RETRIES` times; every refusal
/// is counted in `refused`.
pub async fn open_stream(
    client: &mut PaymentsServiceClient<Channel>,
    reference: &str,
    refused: &AtomicU64,
) -> Result<(tonic::Streaming<PayinUpdate>, PayinUpdate), String> {
    for attempt in 0..=RETRIES {
        let request = StreamPayinUpdatesRequest {
            reference: reference.to_owned(),
        };
        let status = match client.stream_payin_updates(request).await {
            Ok(stream) => {
                let mut stream = stream.into_inner();
                match stream.message().await {
                    Ok(Some(snapshot)) => return Ok((stream, snapshot)),
                    Ok(None) => return Err("ended before its snapshot".into()),
                    Err(status) => status,
                }
            }
            Err(status) => status,
        };
        if status.code() != tonic::Code::ResourceExhausted || attempt == RETRIES {
            return Err(format!("{:?}", status.code()));
        }
        refused.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(backoff(reference, attempt)).await;
    }
    unreachable!("the last attempt returns")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_second_with_jitter_in_its_upper_half() {
        for attempt in 0..40 {
            let step = (FIRST_BACKOFF * (1u32 << attempt.min(16))).min(LONGEST_BACKOFF);
            let pause = backoff("order-1", attempt);
            assert!(pause >= step / 2 && pause <= step, "{attempt}: {pause:?}");
        }
    }

    #[test]
    fn the_token_ends_the_payment_url() {
        assert_eq!(
            payment_token("http://127.0.0.1:8090/pay/tok_abc"),
            Some("tok_abc")
        );
        assert_eq!(payment_token("http://127.0.0.1:8090/"), None);
    }
}
