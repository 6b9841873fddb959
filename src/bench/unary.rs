//! Figures a, b and g: GetPayin throughput of the service against the bare baseline (a
//! terminal payin, a non-terminal one), single-call latency, and the cost of an OTLP exporter.

use super::calls::{self, GET_PAYIN_ROUTE, SILENT_MSISDN, SUCCEEDS_MSISDN};
use super::load::{self, Outcome, closed_loop, connect, ms};
use super::otlp;
use super::procs::{Ports, Redis, RunDir, Sandbox, Service};
use super::report::Report;
use crate::proto::payments_service_client::PaymentsServiceClient;
use crate::proto::{GetPayinRequest, Payin, PayinStatus};
use prost::Message;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};
use tonic::transport::Channel;

const IN_FLIGHT: usize = 64;
const CONNECTIONS: usize = 2;
const WARM_UP: Duration = Duration::from_secs(1);
const WINDOW: Duration = Duration::from_secs(2);
const ROUNDS: usize = 3;
const SINGLE_ROUNDS: usize = 2;

const TERMINAL: &str = "bench-terminal";
const PENDING: &str = "bench-pending";

pub const FIGURES: &[(&str, &str)] = &[
    ("a. GetPayin terminal: throughput / bare", "≥ 0.8"),
    ("b. GetPayin non-terminal: throughput / bare", "≥ 0.5"),
    ("b. GetPayin non-terminal: single-call p50 / bare", "≤ 2"),
    (
        "g. GetPayin terminal with OTLP: throughput / without",
        "≥ 0.9",
    ),
];

/// One side of a comparison: where it goes and for which reference.
struct Target {
    label: &'static str,
    channels: Vec<Channel>,
    reference: &'static str,
}

impl Target {
    async fn run(&self, in_flight: usize, connections: usize, window: Duration) -> Outcome {
        let clients: Arc<Vec<PaymentsServiceClient<Channel>>> = Arc::new(
            self.channels[..connections]
                .iter()
                .cloned()
                .map(PaymentsServiceClient::new)
                .collect(),
        );
        let reference = self.reference;
        closed_loop(in_flight, window, Arc::new(AtomicU64::new(0)), move |n| {
            let mut client = clients[n as usize % clients.len()].clone();
            async move {
                client
                    .get_payin(GetPayinRequest {
                        reference: reference.into(),
                        refresh: false,
                    })
                    .await
                    .map(|_| ())
                    .map_err(|s| load::code_name(&s))
            }
        })
        .await
    }
}

pub async fn run(dir: &RunDir, report: &mut Report) -> Result<(), String> {
    let section = "a, b, g: GetPayin";
    let redis = Redis::start(&dir.path, "redis-get").await?;
    // A short step delay: the 0000 payin reaches SUCCEEDED by itself in 3 steps.
    let sandbox = Sandbox::start(&dir.path, "sandbox-get", "100ms", None).await?;
    let receiver = otlp::Receiver::start().await?;
    // A poll interval of an hour: the non-terminal payin is read from Redis, never refreshed.
    let plain = [("PAYMENTS_POLL_INTERVAL", "1h")];
    let service = Service::start(
        &dir.path,
        "service-get",
        Ports::free()?,
        &redis,
        &sandbox,
        &plain,
    )
    .await?;
    let endpoint = receiver.endpoint();
    let with_otlp = [
        ("PAYMENTS_POLL_INTERVAL", "1h"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_SERVICE_NAME", "payments-gateway-bench"),
    ];
    let traced = Service::start(
        &dir.path,
        "service-otlp",
        Ports::free()?,
        &redis,
        &sandbox,
        &with_otlp,
    )
    .await?;

    let channels = connect(&service.grpc_url(), CONNECTIONS).await?;
    let (terminal, pending) = prepare_payins(&channels[0]).await?;
    let payins_dir = dir.path.join("bare-payins");
    std::fs::create_dir_all(&payins_dir).map_err(|e| e.to_string())?;
    for (reference, payin) in [(TERMINAL, &terminal), (PENDING, &pending)] {
        std::fs::write(
            payins_dir.join(format!("{reference}.pb")),
            payin.encode_to_vec(),
        )
        .map_err(|e| e.to_string())?;
    }
    report.context(
        section,
        format!(
            "answer sizes: terminal payin {} bytes, non-terminal {} bytes (the bare baseline answers the same messages)",
            terminal.encoded_len(),
            pending.encoded_len()
        ),
    );
    let bare = Service::start_bare(&dir.path, &payins_dir).await?;

    let bare_channels = connect(&bare.grpc_url(), CONNECTIONS).await?;
    let traced_channels = connect(&traced.grpc_url(), CONNECTIONS).await?;
    let targets = [
        Target {
            label: "bare, terminal",
            channels: bare_channels.clone(),
            reference: TERMINAL,
        },
        Target {
            label: "service, terminal",
            channels: channels.clone(),
            reference: TERMINAL,
        },
        Target {
            label: "service with OTLP, terminal",
            channels: traced_channels,
            reference: TERMINAL,
        },
        Target {
            label: "bare, non-terminal",
            channels: bare_channels,
            reference: PENDING,
        },
        Target {
            label: "service, non-terminal",
            channels,
            reference: PENDING,
        },
    ];
    for target in &targets {
        target.run(IN_FLIGHT, CONNECTIONS, WARM_UP).await;
    }
    let http = reqwest::Client::new();
    let gets_before = calls::sandbox_requests(&http, &sandbox.base_url(), GET_PAYIN_ROUTE).await?;
    let mut totals: Vec<Outcome> = targets.iter().map(|_| Outcome::default()).collect();
    for _ in 0..ROUNDS {
        for (target, total) in targets.iter().zip(&mut totals) {
            total.add(target.run(IN_FLIGHT, CONNECTIONS, WINDOW).await);
        }
    }
    let mut single_bare = Outcome::default();
    let mut single_service = Outcome::default();
    for _ in 0..SINGLE_ROUNDS {
        single_bare.add(targets[3].run(1, 1, WINDOW).await);
        single_service.add(targets[4].run(1, 1, WINDOW).await);
    }
    let gets_after = calls::sandbox_requests(&http, &sandbox.base_url(), GET_PAYIN_ROUTE).await?;

    for (target, total) in targets.iter().zip(&totals) {
        report.context(
            section,
            format!(
                "{} ({IN_FLIGHT} in flight, {CONNECTIONS} connections): {}",
                target.label,
                total.summary()
            ),
        );
    }
    report.context(
        section,
        format!("single call, bare, non-terminal: {}", single_bare.summary()),
    );
    report.context(
        section,
        format!(
            "single call, service, non-terminal: {}",
            single_service.summary()
        ),
    );
    report.context(
        section,
        format!("sandbox GETs during the measured windows: {} (GetPayin refreshes and the reconciler together; the poll interval is 1 h here)", gets_after - gets_before),
    );
    let (exports, spans) = receiver.received();
    report.context(
        section,
        format!("OTLP receiver: {spans} spans in {exports} exports"),
    );

    let ratio = |a: &Outcome, b: &Outcome| a.throughput() / b.throughput().max(f64::MIN_POSITIVE);
    let [bare_t, service_t, traced_t, bare_n, service_n] = &totals[..] else {
        unreachable!("five targets");
    };
    let errors: u64 = totals.iter().map(Outcome::error_count).sum();
    let a = ratio(service_t, bare_t);
    report.row(
        FIGURES[0].0,
        format!(
            "{a:.2} ({:.0} / {:.0} calls/s)",
            service_t.throughput(),
            bare_t.throughput()
        ),
        FIGURES[0].1,
        a >= 0.8 && errors == 0,
    );
    let b = ratio(service_n, bare_n);
    report.row(
        FIGURES[1].0,
        format!(
            "{b:.2} ({:.0} / {:.0} calls/s)",
            service_n.throughput(),
            bare_n.throughput()
        ),
        FIGURES[1].1,
        b >= 0.5 && errors == 0,
    );
    let (p_service, p_bare) = (
        single_service.quantile_us(0.5),
        single_bare.quantile_us(0.5),
    );
    let p = p_service as f64 / p_bare.max(1) as f64;
    report.row(
        FIGURES[2].0,
        format!("{p:.2} ({} / {})", ms(p_service), ms(p_bare)),
        FIGURES[2].1,
        p <= 2.0,
    );
    let g = ratio(traced_t, service_t);
    report.row(
        FIGURES[3].0,
        format!(
            "{g:.2} ({:.0} / {:.0} calls/s; {spans} spans received)",
            traced_t.throughput(),
            service_t.throughput()
        ),
        FIGURES[3].1,
        g >= 0.9 && spans > 0,
    );
    if errors > 0 {
        report.context(
            section,
            format!("{errors} calls failed: a ratio with errors is not met"),
        );
    }
    Ok(())
}

/// A SUCCEEDED payin and a silent (never-changing, non-terminal) one, as the service answers them.
async fn prepare_payins(channel: &Channel) -> Result<(Payin, Payin), String> {
    let mut client = PaymentsServiceClient::new(channel.clone());
    for (reference, msisdn) in [(TERMINAL, SUCCEEDS_MSISDN), (PENDING, SILENT_MSISDN)] {
        client
            .create_payin(calls::create_request(reference, msisdn))
            .await
            .map_err(|s| format!("CreatePayin {reference}: {s}"))?;
    }
    // The sandbox completes the 0000 payin in three 100 ms steps; ask with refresh until then.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let payin = client
            .get_payin(GetPayinRequest {
                reference: TERMINAL.into(),
                refresh: true,
            })
            .await
            .map_err(|s| format!("GetPayin {TERMINAL}: {s}"))?
            .into_inner();
        if payin.status == PayinStatus::Succeeded as i32 {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{TERMINAL} did not succeed within 15 s (status {})",
                payin.status
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let get = |reference: &'static str| {
        let mut client = client.clone();
        async move {
            client
                .get_payin(GetPayinRequest {
                    reference: reference.into(),
                    refresh: false,
                })
                .await
                .map(tonic::Response::into_inner)
                .map_err(|s| format!("GetPayin {reference}: {s}"))
        }
    };
    Ok((get(TERMINAL).await?, get(PENDING).await?))
}
