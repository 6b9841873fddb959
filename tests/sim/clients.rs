//! Merchants: each creates payins one after another, follows them, refunds the ones that
//! succeed, and sometimes reacts as merchants do (a new key for the same reference after an
//! error, or even after a success). Every choice comes from the client's own seeded RNG.

use super::calls::{Calls, watch_stream};
use super::record::Op;
use payments_gateway::proto::{
    CreatePayinRequest, GetPayinRequest, Payin, PayinStatus, RefundRequest,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tonic::{Code, Request};

use super::calls::DEADLINE;

/// What the payer does, chosen by the number's last four digits (the sandbox's magic).
#[derive(Debug, Clone, Copy)]
enum Payer {
    Succeeds,
    Declines,
    Expires,
    TransactionFails,
    /// Interactive: accepts on the payment page after a while.
    Accepts,
    /// Interactive: never answers, the payin expires.
    Ignores,
}

impl Payer {
    fn pick(rng: &mut StdRng) -> Self {
        match rng.random_range(0..10) {
            0..=2 => Payer::Succeeds,
            3 => Payer::Declines,
            4 => Payer::Expires,
            5 => Payer::TransactionFails,
            6..=8 => Payer::Accepts,
            _ => Payer::Ignores,
        }
    }

    fn msisdn(self) -> &'static str {
        match self {
            Payer::Succeeds => "+2250700000000",
            Payer::Declines => "+2250700000001",
            Payer::Expires => "+2250700000002",
            Payer::TransactionFails => "+2250700000003",
            Payer::Accepts => "+2250700000042",
            Payer::Ignores => "+2250700000077",
        }
    }
}

pub struct Merchant {
    pub calls: Calls,
    pub index: usize,
    pub rng: StdRng,
    pub seed: u64,
    /// No new payin starts after this.
    pub until: Instant,
    pub stop_streams: tokio::sync::watch::Receiver<bool>,
    pub watchers: Vec<JoinHandle<()>>,
    pub http: reqwest::Client,
}

impl Merchant {
    /// Payins one after another until the run ends; returns the stream watchers it started.
    pub async fn run(mut self) -> Vec<JoinHandle<()>> {
        let mut n = 0;
        while Instant::now() < self.until {
            n += 1;
            let reference = format!("sim{}-m{}-{n}", self.seed, self.index);
            self.one_payin(&reference).await;
            let pause = self.rng.random_range(50..400);
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
        self.watchers
    }

    async fn one_payin(&mut self, reference: &str) {
        let payer = Payer::pick(&mut self.rng);
        let amount = self.rng.random_range(100..5000);
        let request = CreatePayinRequest {
            reference: reference.into(),
            amount,
            msisdn: payer.msisdn().into(),
            customer_name: "Sim Merchant".into(),
            country: "CI".into(),
            idempotency_key: format!("{reference}-create-1"),
            ..Default::default()
        };
        self.calls.recorder.first_create(reference);
        let created = self.create(&request).await;
        let Some(payin) = created else {
            if self.rng.random_bool(0.3) {
                self.create_with_new_key(&request, 2).await;
            }
            return;
        };
        if self.rng.random_bool(0.5) {
            self.start_watcher(reference);
        }
        if matches!(payer, Payer::Accepts) {
            self.accept_on_payment_page(&payin.payment_url).await;
        }
        if self.rng.random_bool(0.15) {
            self.create_with_new_key(&request, 3).await;
        }
        let last = self.follow(reference).await;
        if last == Some(PayinStatus::Succeeded) {
            self.refund(reference, amount).await;
        }
    }

    /// CreatePayin with retries on the same key; the payin on OK.
    async fn create(&mut self, request: &CreatePayinRequest) -> Option<Payin> {
        let answer = self
            .calls
            .with_retries(
                &mut self.rng,
                Op::Create,
                &request.reference,
                Some(&request.idempotency_key),
                |mut client| {
                    let request = request.clone();
                    async move { client.create_payin(with_deadline(request)).await }
                },
            )
            .await;
        answer.and_then(Result::ok)
    }

    /// The merchant's reaction: the same reference under a new key. The service must never
    /// create a second payin upstream. Not tried once Redis lost its data (contract §10).
    async fn create_with_new_key(&mut self, request: &CreatePayinRequest, n: u32) {
        if !self.calls.recorder.new_key_allowed(&request.reference) {
            return;
        }
        let again = CreatePayinRequest {
            idempotency_key: format!("{}-create-{n}", request.reference),
            ..request.clone()
        };
        let _ = self.create(&again).await;
        self.calls.recorder.new_key_done(&request.reference);
    }

    fn start_watcher(&mut self, reference: &str) {
        let rng = StdRng::seed_from_u64(self.rng.random());
        let task = watch_stream(
            self.calls.clone(),
            rng,
            reference.to_owned(),
            self.stop_streams.clone(),
        );
        self.watchers.push(tokio::spawn(task));
    }

    /// The payer clicks Accept on the page, straight at the sandbox (not through the
    /// service, nor the provider proxy: it is the payer's browser).
    async fn accept_on_payment_page(&mut self, payment_url: &str) {
        let wait = self.rng.random_range(100..1500);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        for _ in 0..3 {
            let clicked = self.http.post(format!("{payment_url}/accept")).send().await;
            if clicked.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// GetPayin now and then until a terminal status (bounded); the last status seen.
    async fn follow(&mut self, reference: &str) -> Option<PayinStatus> {
        let mut last = None;
        for _ in 0..14 {
            let gap = self.rng.random_range(300..900);
            tokio::time::sleep(Duration::from_millis(gap)).await;
            let refresh = self.rng.random_bool(0.2);
            let answer = self
                .calls
                .with_retries(&mut self.rng, Op::Get, reference, None, |mut client| {
                    let request = GetPayinRequest {
                        reference: reference.to_owned(),
                        refresh,
                    };
                    async move { client.get_payin(with_deadline(request)).await }
                })
                .await;
            if let Some(Ok(payin)) = answer {
                let status = payin.status();
                last = Some(status);
                if is_terminal(status) {
                    break;
                }
            }
        }
        last
    }

    /// 1 to 3 refunds under different keys (one if Redis lost its data since the payin was
    /// created), some at once; each retried with its own key. At most one may reach Novasend.
    async fn refund(&mut self, reference: &str, amount: i64) {
        let keys = if self.calls.recorder.new_key_allowed(reference) {
            self.rng.random_range(1..=3)
        } else {
            1
        };
        let concurrent = self.rng.random_bool(0.5);
        let mut tasks = Vec::new();
        for k in 1..=keys {
            let partial = self.rng.random_bool(0.4);
            let request = RefundRequest {
                reference: reference.to_owned(),
                reason: "customer asked".into(),
                amount: if partial {
                    self.rng.random_range(1..amount)
                } else {
                    0
                },
                idempotency_key: format!("{reference}-refund-{k}"),
                ..Default::default()
            };
            let task = refund_with_retries(self.calls.clone(), self.rng.random(), request);
            if concurrent {
                tasks.push(tokio::spawn(task));
            } else {
                task.await;
            }
        }
        for task in tasks {
            let _ = task.await;
        }
        if keys > 1 {
            self.calls.recorder.new_key_done(reference);
        }
    }
}

async fn refund_with_retries(calls: Calls, seed: u64, request: RefundRequest) {
    let mut rng = StdRng::seed_from_u64(seed);
    let key = request.idempotency_key.clone();
    let _ = calls
        .with_retries(
            &mut rng,
            Op::Refund,
            &request.reference,
            Some(&key),
            |mut client| {
                let request = request.clone();
                async move { client.refund(with_deadline(request)).await }
            },
        )
        .await;
}

/// The request with its gRPC deadline (`grpc-timeout`), so the server knows it too.
fn with_deadline<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.set_timeout(DEADLINE);
    request
}

pub fn is_terminal(status: PayinStatus) -> bool {
    matches!(
        status,
        PayinStatus::Succeeded | PayinStatus::Failed | PayinStatus::Declined | PayinStatus::Expired
    )
}

/// The codes a call may answer (contract §4); anything else breaks I3.
pub fn is_contract_code(code: Code) -> bool {
    matches!(
        code,
        Code::Ok
            | Code::InvalidArgument
            | Code::NotFound
            | Code::FailedPrecondition
            | Code::AlreadyExists
            | Code::Aborted
            | Code::Unavailable
            | Code::ResourceExhausted
            | Code::DeadlineExceeded
            | Code::Internal
    )
}
