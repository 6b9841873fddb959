use clap::{Parser, Subcommand};
use payments_gateway::bench::{self, BenchArgs, bare::BareArgs};
use payments_gateway::client::{self, ClientArgs};
use payments_gateway::config::{Config, SandboxArgs, ServeArgs};
use payments_gateway::domain::Countries;
use payments_gateway::sandbox;
use payments_gateway::startup::{Application, install_crypto_provider};
use payments_gateway::telemetry::{self, LogFormat};
use std::process::ExitCode;

/// jemalloc instead of glibc's malloc: a third less CPU per call under load, measured by
/// `payments-gateway bench` (docs/decisions.md, "Performance").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Freed pages go back to the system within a second (a background thread returns them even
/// when nothing allocates), so resident memory follows what is really in use. jemalloc reads
/// this C string (`const char *`): `Option<&u8>` has exactly a nullable pointer's layout.
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static MALLOC_CONF: Option<&'static u8> =
    Some(&b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0\0"[0]);

/// gRPC gateway for mobile-money payins over Novasend.
#[derive(Parser)]
#[command(name = "payments-gateway", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service (the default).
    Serve(Box<ServeArgs>),
    /// Run the provider sandbox alone (Novasend, and HUB2 under /hub2).
    Sandbox(SandboxArgs),
    /// Talk to a running service.
    Client(ClientArgs),
    /// Measure every performance figure against its target (starts its own Redis,
    /// sandbox and replicas on loopback; about three minutes).
    Bench(BenchArgs),
    /// The bench's bare baseline (started by `bench`).
    #[command(hide = true)]
    BenchBare(Box<BareArgs>),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Serve(args)) => serve(*args).await,
        None => serve(cli.serve).await,
        Some(Command::Sandbox(args)) => run_sandbox(args).await,
        Some(Command::Bench(args)) => match bench::run(args).await {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("payments-gateway bench: {e}");
                ExitCode::FAILURE
            }
        },
        Some(Command::BenchBare(args)) => match bench::bare::run(*args).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("payments-gateway bench-bare: {e}");
                ExitCode::FAILURE
            }
        },
        Some(Command::Client(args)) => {
            install_crypto_provider();
            match client::run(args).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn bad_configuration(errors: Vec<String>) -> ExitCode {
    for error in errors {
        eprintln!("payments-gateway: bad configuration: {error}");
    }
    ExitCode::from(2)
}

async fn serve(args: ServeArgs) -> ExitCode {
    let config = match Config::from_args(&args) {
        Ok(config) => config,
        Err(errors) => return bad_configuration(errors),
    };
    let telemetry = match telemetry::init(config.log_format, config.otlp.as_ref()) {
        Ok(guard) => guard,
        Err(e) => return bad_configuration(vec![e]),
    };
    let simulated = sandbox::in_process::stands_in_for(&config.providers.without_api());
    let simulates_hub2 = simulated.contains(&payments_gateway::provider::hub2::NAME);
    let app = match Application::build(config).await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!("cannot start: {e}");
            telemetry.shutdown();
            return ExitCode::FAILURE;
        }
    };
    if let Some(sandbox) = app.sandbox_url() {
        let hub2 = simulates_hub2.then(|| format!("{sandbox}/hub2"));
        // For a person at a terminal; a closed stdout must not stop the service.
        use std::io::Write;
        let _ = writeln!(
            std::io::stdout(),
            "{}",
            quick_start(&sandbox, hub2.as_deref(), &app.grpc_addr().to_string())
        );
    }
    let outcome = app.run_until_stopped(shutdown_signal()).await;
    // Spans still buffered go out before the process ends.
    telemetry.shutdown();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("payments-gateway: server failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn quick_start(sandbox: &str, hub2: Option<&str>, grpc: &str) -> String {
    let mut text = format!(
        "
  No NOVASEND_BASE_URL: using the built-in Novasend sandbox at {sandbox}
  gRPC on {grpc}. Make a first payment from another terminal:

    cargo run --release -- client create --reference order-1 --amount 300 \\
        --msisdn +2250700000042 --name 'Awa Kone' --country CI
    cargo run --release -- client watch order-1

  then open the payment page it prints and click Accept.
"
    );
    if let Some(hub2) = hub2 {
        text.push_str(&format!(
            "
  No HUB2_BASE_URL either: the same sandbox simulates HUB2 at {hub2}
  A HUB2 payin with a one-time code (the sandbox's is always {code}):

    cargo run --release -- client create --reference order-2 --amount 300 \\
        --msisdn +2250700000042 --name 'Awa Kone' --country CI --provider hub2 --operator orange
    cargo run --release -- client confirm order-2 --code {code}
    cargo run --release -- client watch order-2
",
            code = sandbox::hub2::OTP_CODE
        ));
    }
    text.push_str(
        "
  Numbers ending in 0000 succeed by themselves, 0001 are declined, 0002 expire,
  0003 fail at the transaction, 0004 never answer.
",
    );
    text
}

async fn run_sandbox(args: SandboxArgs) -> ExitCode {
    let (addr, config) = match args.to_config(&Countries::default()) {
        Ok(parsed) => parsed,
        Err(errors) => return bad_configuration(errors),
    };
    let _ = telemetry::init(LogFormat::Text, None);
    install_crypto_provider();
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("payments-gateway: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let handle = match sandbox::start(listener, config) {
        Ok(handle) => handle,
        Err(e) => {
            eprintln!("payments-gateway: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "Novasend sandbox at {0}, HUB2 sandbox at {0}/hub2 (Ctrl-C to stop)",
        handle.base_url()
    );
    shutdown_signal().await;
    drop(handle);
    ExitCode::SUCCESS
}

/// Completes on Ctrl-C or SIGTERM (what Kubernetes sends).
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
