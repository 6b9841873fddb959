//! Calls as a careful merchant makes them: each with a gRPC deadline, to a random replica,
//! retried with the same key on the codes that say "retry", every attempt recorded.

use super::record::{Answer, CallRecord, Op, Recorder, Step, StreamEnd, StreamRecord};
use payments_gateway::proto::payments_service_client::PaymentsServiceClient;
use payments_gateway::proto::{PayinUpdate, StreamPayinUpdatesRequest};
use rand::Rng;
use rand::rngs::StdRng;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

/// The deadline every call carries.
pub const DEADLINE: Duration = Duration::from_secs(15);
/// Beyond its deadline, how long a call may take before it counts as a hang.
pub const HANG_GRACE: Duration = Duration::from_secs(1);
const MAX_ATTEMPTS: u32 = 8;

/// What every client shares: the replicas' channels and the recorder.
#[derive(Clone)]
pub struct Calls {
    pub recorder: Arc<Recorder>,
    channels: Vec<Channel>,
    /// Retries stop after this instant (faults are over well before).
    pub retry_until: Instant,
}

impl Calls {
    /// One lazily connected channel per replica; it reconnects by itself after a restart.
    pub fn new(recorder: Arc<Recorder>, replica_urls: &[String], retry_until: Instant) -> Self {
        let channels = replica_urls
            .iter()
            .map(|url| {
                Endpoint::from_shared(url.clone())
                    .expect("a replica URL")
                    .connect_timeout(Duration::from_secs(1))
                    .http2_keep_alive_interval(Duration::from_secs(2))
                    .keep_alive_timeout(Duration::from_secs(2))
                    .connect_lazy()
            })
            .collect();
        Calls {
            recorder,
            channels,
            retry_until,
        }
    }

    pub fn replicas(&self) -> usize {
        self.channels.len()
    }

    pub fn client(&self, replica: usize) -> PaymentsServiceClient<Channel> {
        PaymentsServiceClient::new(self.channels[replica].clone())
    }

    /// One attempt on one replica, recorded. `None`: no answer in time (a hang).
    pub async fn attempt<T, F, Fut>(
        &self,
        op: Op,
        reference: &str,
        key: Option<&str>,
        replica: usize,
        call: F,
    ) -> Option<(Result<T, Status>, bool)>
    where
        T: prost::Message,
        F: FnOnce(PaymentsServiceClient<Channel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let mark = self.recorder.replica_mark(replica);
        let epoch = self.recorder.wipes();
        let started = self.recorder.now();
        let clock = Instant::now();
        let outcome = tokio::time::timeout(DEADLINE + HANG_GRACE, call(self.client(replica))).await;
        let disrupted = self.recorder.disrupted_since(replica, mark);
        let result = outcome.ok().map(|r| r.map(tonic::Response::into_inner));
        self.recorder.call(CallRecord {
            op,
            reference: reference.to_owned(),
            key: key.map(str::to_owned),
            replica,
            started,
            elapsed: clock.elapsed(),
            answer: result.as_ref().map(answer_of),
            disrupted,
            epoch: (self.recorder.wipes() == epoch).then_some(epoch),
        });
        result.map(|r| (r, disrupted))
    }

    /// Attempts until a definitive answer, on random replicas, with a small back-off.
    /// `None`: every attempt was transient (the outcome stays unknown).
    pub async fn with_retries<T, F, Fut>(
        &self,
        rng: &mut StdRng,
        op: Op,
        reference: &str,
        key: Option<&str>,
        call: F,
    ) -> Option<Result<T, Status>>
    where
        T: prost::Message,
        F: Fn(PaymentsServiceClient<Channel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        for attempt in 1..=MAX_ATTEMPTS {
            let replica = rng.random_range(0..self.replicas());
            if let Some((result, disrupted)) =
                self.attempt(op, reference, key, replica, &call).await
                && !(is_transient(&result) || disrupted && result.is_err())
            {
                return Some(result);
            }
            if attempt == MAX_ATTEMPTS || Instant::now() > self.retry_until {
                return None;
            }
            let back_off = 100 * u64::from(attempt) + rng.random_range(0..200);
            tokio::time::sleep(Duration::from_millis(back_off.min(1500))).await;
        }
        None
    }
}

fn answer_of<T: prost::Message>(result: &Result<T, Status>) -> Answer {
    match result {
        Ok(message) => Answer {
            code: Code::Ok,
            message: String::new(),
            details: Vec::new(),
            body: message.encode_to_vec(),
        },
        Err(status) => Answer {
            code: status.code(),
            message: status.message().to_owned(),
            details: status.details().to_vec(),
            body: Vec::new(),
        },
    }
}

/// The codes after which the contract says: retry with the same key.
pub fn is_transient<T>(result: &Result<T, Status>) -> bool {
    match result {
        Ok(_) => false,
        Err(status) => is_transient_code(status.code()) || is_deadline(status),
    }
}

pub fn is_transient_code(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable | Code::Aborted | Code::DeadlineExceeded | Code::ResourceExhausted
    )
}

/// tonic's server answers CANCELLED "Timeout expired" when a call outlives its
/// `grpc-timeout`: the deadline, reached.
pub fn is_deadline(status: &Status) -> bool {
    status.code() == Code::Cancelled && status.message().contains("Timeout expired")
}

/// Follows a payin's updates, re-subscribing (bounded) after a transient end, until its
/// terminal message or `stop`; every subscription is recorded.
pub async fn watch_stream(
    calls: Calls,
    mut rng: StdRng,
    reference: String,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    for _ in 0..6 {
        let replica = rng.random_range(0..calls.replicas());
        let record = subscribe_once(&calls, replica, &reference, &mut stop).await;
        let again = match &record.end {
            StreamEnd::Error(code, _) => is_transient_code(*code) || record.disrupted,
            StreamEnd::Ok | StreamEnd::StillOpen => false,
        };
        calls.recorder.stream(record);
        if !again || *stop.borrow() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(100..600))).await;
    }
}

async fn subscribe_once(
    calls: &Calls,
    replica: usize,
    reference: &str,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> StreamRecord {
    let recorder = &calls.recorder;
    let mark = recorder.replica_mark(replica);
    let mut record = StreamRecord {
        reference: reference.to_owned(),
        replica,
        steps: Vec::new(),
        end: StreamEnd::StillOpen,
        disrupted: false,
    };
    let request = StreamPayinUpdatesRequest {
        reference: reference.to_owned(),
    };
    let mut client = calls.client(replica);
    let opened = tokio::select! {
        opened = client.stream_payin_updates(request) => opened,
        _ = stop.wait_for(|stopped| *stopped) => return record,
    };
    let mut stream = match opened {
        Ok(response) => response.into_inner(),
        Err(status) => {
            record.end = StreamEnd::Error(status.code(), status.message().to_owned());
            record.disrupted = recorder.disrupted_since(replica, mark);
            return record;
        }
    };
    loop {
        let next = tokio::select! {
            next = stream.message() => next,
            _ = stop.wait_for(|stopped| *stopped) => break,
        };
        match next {
            Ok(Some(update)) => record.steps.push(step_of(&update)),
            Ok(None) => {
                record.end = StreamEnd::Ok;
                break;
            }
            Err(status) => {
                record.end = StreamEnd::Error(status.code(), status.message().to_owned());
                break;
            }
        }
    }
    record.disrupted = recorder.disrupted_since(replica, mark);
    record
}

fn step_of(update: &PayinUpdate) -> Step {
    let payin = update.payin.clone().unwrap_or_default();
    Step {
        sequence: update.sequence,
        status: payin.status,
        confirmation: payin.confirmation_status,
        transaction: payin.transaction.map(|t| t.status),
    }
}
