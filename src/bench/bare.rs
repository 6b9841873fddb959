//! The bare baseline: a `PaymentsService` whose GetPayin answers a pre-built `Payin` (the
//! very message the real service gave for that reference, so of the same encoded size), and
//! whose CreatePayin, given a Redis and a sandbox, makes a create's round trips alone
//! (`bare_create`); served through the same server builder, interceptor, message limits,
//! incoming (nodelay), health and reflection services as the real one
//! (`startup::grpc_server`). Run as the hidden `payments-gateway bench-bare` subcommand,
//! reading the same environment as `serve`.

use super::bare_create::BareCreate;
use crate::api::auth::BearerAuth;
use crate::config::{Config, ServeArgs};
use crate::proto::payments_service_server::PaymentsService;
use crate::proto::{
    CreatePayinRequest, GetPayinRequest, Payin, PayinUpdate, Refund, RefundRequest,
    StreamPayinUpdatesRequest,
};
use crate::startup::{grpc_incoming, grpc_server, payments_service, reflection_services};
use prost::Message;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use tonic::{Request, Response, Status};

#[derive(clap::Args)]
pub struct BareArgs {
    /// A directory of `<reference>.pb` files, each an encoded `Payin` to answer.
    #[arg(long)]
    pub payins_dir: PathBuf,
    /// With `--sandbox-url`: CreatePayin makes a create's round trips to this Redis.
    #[arg(long, requires = "sandbox_url")]
    pub redis_url: Option<String>,
    /// The Novasend sandbox the bare CreatePayin posts to.
    #[arg(long, requires = "redis_url")]
    pub sandbox_url: Option<String>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Clone)]
pub struct BarePayments {
    payins: Arc<HashMap<String, Payin>>,
    create: Option<Arc<BareCreate>>,
}

impl BarePayments {
    pub fn load(dir: &Path) -> Result<Self, String> {
        let mut payins = HashMap::new();
        let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for entry in entries {
            let path = entry.map_err(|e| e.to_string())?.path();
            let Some(reference) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".pb"))
            else {
                continue;
            };
            let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let payin =
                Payin::decode(bytes.as_slice()).map_err(|e| format!("{}: {e}", path.display()))?;
            payins.insert(reference.to_owned(), payin);
        }
        Ok(Self {
            payins: Arc::new(payins),
            create: None,
        })
    }
}

type NoUpdates = Pin<Box<dyn futures_util::Stream<Item = Result<PayinUpdate, Status>> + Send>>;

#[tonic::async_trait]
impl PaymentsService for BarePayments {
    async fn create_payin(
        &self,
        request: Request<CreatePayinRequest>,
    ) -> Result<Response<Payin>, Status> {
        match &self.create {
            Some(create) => create.create(request.get_ref()).await.map(Response::new),
            None => Err(Status::unimplemented(
                "bare baseline: no Redis and sandbox given",
            )),
        }
    }

    async fn get_payin(
        &self,
        request: Request<GetPayinRequest>,
    ) -> Result<Response<Payin>, Status> {
        match self.payins.get(&request.get_ref().reference) {
            Some(payin) => Ok(Response::new(payin.clone())),
            None => Err(Status::not_found("bare baseline: unknown reference")),
        }
    }

    type StreamPayinUpdatesStream = NoUpdates;

    async fn stream_payin_updates(
        &self,
        _request: Request<StreamPayinUpdatesRequest>,
    ) -> Result<Response<NoUpdates>, Status> {
        Err(Status::unimplemented(
            "bare baseline: GetPayin and CreatePayin only",
        ))
    }

    async fn refund(&self, _request: Request<RefundRequest>) -> Result<Response<Refund>, Status> {
        Err(Status::unimplemented(
            "bare baseline: GetPayin and CreatePayin only",
        ))
    }

    async fn confirm_payin(
        &self,
        _request: Request<crate::proto::ConfirmPayinRequest>,
    ) -> Result<Response<Payin>, Status> {
        Err(Status::unimplemented(
            "bare baseline: GetPayin and CreatePayin only",
        ))
    }
}

/// Serves the bare baseline on PAYMENTS_GRPC_ADDR until the process is killed.
pub async fn run(args: BareArgs) -> Result<(), String> {
    crate::startup::install_crypto_provider();
    let config = Config::from_args(&args.serve).map_err(|errors| errors.join("; "))?;
    let mut bare = BarePayments::load(&args.payins_dir)?;
    if let (Some(redis_url), Some(sandbox_url)) = (&args.redis_url, &args.sandbox_url) {
        bare.create = Some(Arc::new(BareCreate::connect(redis_url, sandbox_url).await?));
    }
    let listener = tokio::net::TcpListener::bind(config.grpc_addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.grpc_addr))?;
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    for name in ["", "payments.v1.PaymentsService"] {
        health_reporter
            .set_service_status(name, tonic_health::ServingStatus::Serving)
            .await;
    }
    let (reflection_v1, reflection_v1alpha) = reflection_services()?;
    let auth = BearerAuth::new(config.auth_tokens.clone());
    grpc_server(&config.limits, config.tls.as_ref())?
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(payments_service(bare, &config.limits, auth))
        .serve_with_incoming(grpc_incoming(listener))
        .await
        .map_err(|e| e.to_string())
}
