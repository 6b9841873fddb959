//! The processes a bench run starts: a private redis-server, the Novasend sandbox, replicas
//! of the service and the bare baseline, each a child killed when its guard is dropped (on
//! every path out of the bench, errors and Ctrl-C included). All listen on 127.0.0.1.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The sandbox's credentials, given to the service as Novasend's.
pub const API_KEY: &str = "bench-api-key";
pub const API_CLIENT: &str = "bench-api-client";
/// Signs the sandbox's webhooks; the service checks them.
pub const WEBHOOK_SECRET: &str = "bench-webhook-secret";

const START_WITHIN: Duration = Duration::from_secs(30);

/// A temp directory for logs and files, removed on drop unless asked to keep it.
pub struct RunDir {
    pub path: PathBuf,
    pub keep: bool,
}

impl RunDir {
    pub fn new() -> Result<Self, String> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let path = std::env::temp_dir().join(format!(
            "payments-gateway-bench-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Self { path, keep: false })
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// A child process; SIGKILL and reaped on drop.
pub struct Proc {
    pub name: String,
    child: Child,
    log: PathBuf,
}

impl Proc {
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[String],
        env: &[(String, String)],
        dir: &Path,
    ) -> Result<Self, String> {
        let log = dir.join(format!("{name}.log"));
        let file = File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = file.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new(program)
            .args(args)
            // Only what we give it (and PATH): the caller's PAYMENTS_* must not leak in.
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env.iter().cloned())
            .stdin(Stdio::null())
            .stdout(Stdio::from(file))
            .stderr(Stdio::from(err))
            .spawn()
            .map_err(|e| format!("cannot start {name} ({}): {e}", program.display()))?;
        Ok(Self {
            name: name.to_owned(),
            child,
            log,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// An error naming the process, with the end of its log.
    pub fn failure(&mut self, what: &str) -> String {
        let exit = match self.child.try_wait() {
            Ok(Some(status)) => format!(" (exited: {status})"),
            _ => String::new(),
        };
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(15)..].join("\n");
        format!(
            "{} {what}{exit}; {}:\n{tail}",
            self.name,
            self.log.display()
        )
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback port (bound, read and released: another process could take it meanwhile,
/// which the start of the child would then report).
pub fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

pub struct Redis {
    pub proc: Proc,
    pub port: u16,
}

impl Redis {
    /// `redis-server` without persistence, its working directory in `dir`.
    pub async fn start(dir: &Path, name: &str) -> Result<Self, String> {
        let port = free_port()?;
        let data = dir.join(name);
        std::fs::create_dir_all(&data).map_err(|e| e.to_string())?;
        let args: Vec<String> = [
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            &data.to_string_lossy(),
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let mut proc =
            Proc::spawn(name, Path::new("redis-server"), &args, &[], dir).map_err(|e| {
                format!("{e} (install redis-server, e.g. apt-get install redis-server)")
            })?;
        let deadline = Instant::now() + START_WITHIN;
        while Instant::now() < deadline {
            if redis_pong(port).await {
                return Ok(Self { proc, port });
            }
            if !proc.is_running() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(proc.failure("did not answer PING"))
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

async fn redis_pong(port: u16) -> bool {
    let attempt = async {
        let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        tcp.write_all(b"PING\r\n").await.ok()?;
        let mut buf = [0u8; 7];
        tcp.read_exact(&mut buf).await.ok()?;
        Some(&buf == b"+PONG\r\n")
    };
    tokio::time::timeout(Duration::from_secs(1), attempt)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

pub struct Sandbox {
    pub proc: Proc,
    pub port: u16,
}

impl Sandbox {
    /// `payments-gateway sandbox`: no added latency; a step delay of an hour so that payins
    /// move only when the bench moves them (or, with a short delay, magic numbers do).
    pub async fn start(
        dir: &Path,
        name: &str,
        step_delay: &str,
        webhook_url: Option<&str>,
    ) -> Result<Self, String> {
        let port = free_port()?;
        let mut vars = env(&[
            ("SANDBOX_API_KEY", API_KEY),
            ("SANDBOX_API_CLIENT", API_CLIENT),
            ("SANDBOX_STEP_DELAY", step_delay),
            ("SANDBOX_EXPIRY", "1h"),
            ("SANDBOX_WEBHOOK_SECRET", WEBHOOK_SECRET),
            ("RUST_LOG", "warn"),
        ]);
        if let Some(url) = webhook_url {
            vars.push(("SANDBOX_WEBHOOK_URL".into(), url.to_owned()));
        }
        let args = vec![
            "sandbox".to_owned(),
            "--addr".into(),
            format!("127.0.0.1:{port}"),
        ];
        let mut proc = Proc::spawn(name, &own_binary()?, &args, &vars, dir)?;
        let http = reqwest::Client::new();
        let url = format!("http://127.0.0.1:{port}/_sandbox/stats");
        let deadline = Instant::now() + START_WITHIN;
        while Instant::now() < deadline {
            let answer = tokio::time::timeout(Duration::from_secs(1), http.get(&url).send()).await;
            if let Ok(Ok(response)) = answer
                && response.status().is_success()
            {
                return Ok(Self { proc, port });
            }
            if !proc.is_running() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(proc.failure("did not answer GET /_sandbox/stats"))
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// A replica of the service, or the bare baseline, and its gRPC port.
pub struct Service {
    pub proc: Proc,
    pub grpc_port: u16,
}

/// Ports chosen before the start, so that a sandbox can be told where webhooks go.
pub struct Ports {
    pub grpc: u16,
    pub http: u16,
}

impl Ports {
    pub fn free() -> Result<Self, String> {
        Ok(Self {
            grpc: free_port()?,
            http: free_port()?,
        })
    }

    pub fn webhook_url(&self) -> String {
        format!("http://127.0.0.1:{}/webhooks/novasend", self.http)
    }
}

impl Service {
    /// `payments-gateway serve` on Redis and the sandbox, with `extra` environment.
    pub async fn start(
        dir: &Path,
        name: &str,
        ports: Ports,
        redis: &Redis,
        sandbox: &Sandbox,
        extra: &[(&str, &str)],
    ) -> Result<Self, String> {
        let mut vars = env(&[
            ("PAYMENTS_REDIS_URL", &redis.url()),
            ("NOVASEND_BASE_URL", &sandbox.base_url()),
            ("NOVASEND_API_KEY", API_KEY),
            ("NOVASEND_API_CLIENT", API_CLIENT),
            ("NOVASEND_WEBHOOK_SECRET", WEBHOOK_SECRET),
            ("RUST_LOG", "warn"),
        ]);
        vars.extend(env(extra));
        Self::spawn(dir, name, "serve", ports, vars, &[]).await
    }

    /// The hidden `bench-bare` subcommand: the bare PaymentsService on the same server
    /// builder, answering the pre-built messages in `payins_dir`.
    pub async fn start_bare(dir: &Path, payins_dir: &Path) -> Result<Self, String> {
        let vars = env(&[("RUST_LOG", "warn")]);
        let extra = ["--payins-dir".to_owned(), payins_dir.display().to_string()];
        Self::spawn(dir, "bare", "bench-bare", Ports::free()?, vars, &extra).await
    }

    /// The bare baseline whose CreatePayin makes a create's round trips to `redis` and
    /// `sandbox`, none of its work.
    pub async fn start_bare_create(
        dir: &Path,
        redis: &Redis,
        sandbox: &Sandbox,
    ) -> Result<Self, String> {
        let payins_dir = dir.join("bare-create-payins");
        std::fs::create_dir_all(&payins_dir).map_err(|e| e.to_string())?;
        let vars = env(&[("RUST_LOG", "warn")]);
        let extra = [
            "--payins-dir".to_owned(),
            payins_dir.display().to_string(),
            "--redis-url".into(),
            redis.url(),
            "--sandbox-url".into(),
            sandbox.base_url(),
        ];
        Self::spawn(
            dir,
            "bare-create",
            "bench-bare",
            Ports::free()?,
            vars,
            &extra,
        )
        .await
    }

    async fn spawn(
        dir: &Path,
        name: &str,
        subcommand: &str,
        ports: Ports,
        mut vars: Vec<(String, String)>,
        extra_args: &[String],
    ) -> Result<Self, String> {
        vars.push((
            "PAYMENTS_GRPC_ADDR".into(),
            format!("127.0.0.1:{}", ports.grpc),
        ));
        vars.push((
            "PAYMENTS_HTTP_ADDR".into(),
            format!("127.0.0.1:{}", ports.http),
        ));
        let mut args = vec![subcommand.to_owned()];
        args.extend_from_slice(extra_args);
        let proc = Proc::spawn(name, &own_binary()?, &args, &vars, dir)?;
        let mut service = Self {
            proc,
            grpc_port: ports.grpc,
        };
        service.wait_serving().await?;
        Ok(service)
    }

    pub fn grpc_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.grpc_port)
    }

    async fn wait_serving(&mut self) -> Result<(), String> {
        use tonic_health::pb::health_check_response::ServingStatus;
        use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
        let deadline = Instant::now() + START_WITHIN;
        while Instant::now() < deadline {
            let check = async {
                let channel = tonic::transport::Endpoint::from_shared(self.grpc_url())
                    .ok()?
                    .connect()
                    .await
                    .ok()?;
                let answer = HealthClient::new(channel)
                    .check(HealthCheckRequest {
                        service: String::new(),
                    })
                    .await
                    .ok()?;
                Some(answer.into_inner().status == ServingStatus::Serving as i32)
            };
            let serving = tokio::time::timeout(Duration::from_secs(2), check).await;
            if matches!(serving, Ok(Some(true))) {
                return Ok(());
            }
            if !self.proc.is_running() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(self.proc.failure("did not become SERVING"))
    }
}

/// This very binary, run again with another subcommand.
pub fn own_binary() -> Result<PathBuf, String> {
    std::env::current_exe().map_err(|e| format!("cannot find the running binary: {e}"))
}
