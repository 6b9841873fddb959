//! Real processes for fault tests: replicas of the service and the Novasend sandbox as
//! children of the real binary, and a redis-server that keeps its data on disk. Each can be
//! killed with SIGKILL and restarted on the same ports; its output goes to a log file.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

pub const BINARY: &str = env!("CARGO_BIN_EXE_payments-gateway");

/// A directory of our own under the system's temp dir; removed on drop unless kept.
pub struct RunDir {
    pub path: PathBuf,
    keep: bool,
}

impl RunDir {
    pub fn new(label: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let path = std::env::temp_dir().join(format!("{label}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).expect("a temp dir");
        RunDir { path, keep: false }
    }

    /// Keeps the directory (its logs) after the test, to read them.
    pub fn keep(&mut self) {
        self.keep = true;
    }

    /// Removes it on drop after all (the run went well).
    pub fn release(&mut self) {
        self.keep = false;
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// A program run as a child, restartable with the same arguments and environment.
pub struct ChildProcess {
    pub name: String,
    program: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    log_path: PathBuf,
    child: Option<Child>,
}

impl ChildProcess {
    pub fn new(
        name: &str,
        program: &str,
        args: Vec<String>,
        env: Vec<(String, String)>,
        log_dir: &Path,
    ) -> Self {
        ChildProcess {
            name: name.to_owned(),
            program: program.to_owned(),
            args,
            env,
            log_path: log_dir.join(format!("{name}.log")),
            child: None,
        }
    }

    /// Starts it (again), appending its output to its log after a marker line.
    pub fn spawn(&mut self) -> Result<(), String> {
        self.kill9();
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .map_err(|e| format!("cannot open {}: {e}", self.log_path.display()))?;
        let _ = writeln!(log, "=== {} starts ===", self.name);
        let child = Command::new(&self.program)
            .args(&self.args)
            .env_clear()
            // Only what we give it, and PATH so that it is found as it would be by a shell.
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(self.env.iter().cloned())
            .stdin(Stdio::null())
            .stdout(clone_log(&log)?)
            .stderr(clone_log(&log)?)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.name))?;
        self.child = Some(child);
        Ok(())
    }

    /// SIGKILL, as `kill -9` does: no shutdown, no flush, sockets torn down by the kernel.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The last lines of its log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    fn failure(&mut self, what: &str) -> String {
        let exit = match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(Some(status))) => format!(" ({status})"),
            _ => String::new(),
        };
        format!(
            "{} {what}{exit}; log {}:\n{}",
            self.name,
            self.log_path.display(),
            self.log_tail(20)
        )
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn clone_log(log: &File) -> Result<Stdio, String> {
    log.try_clone()
        .map(Stdio::from)
        .map_err(|e| format!("cannot share the log file: {e}"))
}

/// A replica of the service: `payments-gateway serve` on its own gRPC and HTTP ports.
pub struct Replica {
    pub process: ChildProcess,
    pub grpc_port: u16,
    pub http_port: u16,
}

impl Replica {
    /// A replica on these ports with `env` (plus its addresses), not started yet: its
    /// addresses are known before it runs (a webhook relay may need them).
    pub fn new(
        name: &str,
        log_dir: &Path,
        env: &[(String, String)],
        grpc_port: u16,
        http_port: u16,
    ) -> Self {
        let mut env = env.to_vec();
        env.push((
            "PAYMENTS_GRPC_ADDR".into(),
            format!("127.0.0.1:{grpc_port}"),
        ));
        env.push((
            "PAYMENTS_HTTP_ADDR".into(),
            format!("127.0.0.1:{http_port}"),
        ));
        let process = ChildProcess::new(name, BINARY, vec!["serve".into()], env, log_dir);
        Replica {
            process,
            grpc_port,
            http_port,
        }
    }

    /// Starts it and waits until it is SERVING.
    pub async fn start(&mut self) -> Result<(), String> {
        self.process.spawn()?;
        self.wait_serving(Duration::from_secs(30)).await
    }

    pub fn grpc_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.grpc_port)
    }

    pub fn webhook_url(&self) -> String {
        format!("http://127.0.0.1:{}/webhooks/novasend", self.http_port)
    }

    pub fn kill9(&mut self) {
        self.process.kill9();
    }

    /// Starts it again on the same ports, without waiting for it.
    pub fn restart(&mut self) -> Result<(), String> {
        self.process.spawn()
    }

    /// Waits (bounded) until grpc.health.v1 says SERVING for the whole server.
    pub async fn wait_serving(&mut self, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if !self.process.is_running() {
                return Err(self.process.failure("exited before serving"));
            }
            if health_says_serving(&self.grpc_url()).await {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(self
            .process
            .failure(&format!("not SERVING after {limit:?}")))
    }
}

async fn health_says_serving(url: &str) -> bool {
    let Ok(endpoint) = tonic::transport::Endpoint::from_shared(url.to_owned()) else {
        return false;
    };
    let endpoint = endpoint
        .connect_timeout(Duration::from_millis(500))
        .timeout(Duration::from_secs(1));
    let Ok(channel) = endpoint.connect().await else {
        return false;
    };
    let asked = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await;
    asked.is_ok_and(|r| r.into_inner().status() == ServingStatus::Serving)
}

/// The Novasend sandbox alone: `payments-gateway sandbox --addr 127.0.0.1:PORT`.
pub struct SandboxProcess {
    pub process: ChildProcess,
    pub port: u16,
}

impl SandboxProcess {
    /// Starts it with `env` (SANDBOX_STEP_DELAY, SANDBOX_WEBHOOK_URL …) and waits until it
    /// answers.
    pub async fn start(log_dir: &Path, env: &[(String, String)]) -> Result<Self, String> {
        let port = super::free_port();
        let args = vec![
            "sandbox".into(),
            "--addr".into(),
            format!("127.0.0.1:{port}"),
        ];
        let process = ChildProcess::new("sandbox", BINARY, args, env.to_vec(), log_dir);
        let mut sandbox = SandboxProcess { process, port };
        sandbox.process.spawn()?;
        sandbox.wait_answering(Duration::from_secs(20)).await?;
        Ok(sandbox)
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn wait_answering(&mut self, limit: Duration) -> Result<(), String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(1))
            .build()
            .map_err(|e| e.to_string())?;
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if !self.process.is_running() {
                return Err(self.process.failure("exited before answering"));
            }
            let asked = http
                .get(format!("{}/_sandbox/faults", self.base_url()))
                .send()
                .await;
            if asked.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(self
            .process
            .failure(&format!("not answering after {limit:?}")))
    }
}

/// A redis-server whose data survives a `kill -9` (append-only file, fsync on every write),
/// restartable on the same port with its data or wiped.
pub struct DurableRedis {
    pub process: ChildProcess,
    pub port: u16,
    data_dir: PathBuf,
}

impl DurableRedis {
    pub fn start(log_dir: &Path) -> Result<Self, String> {
        let port = super::stable_port();
        let data_dir = log_dir.join("redis-data");
        let args = [
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--dir",
            &data_dir.to_string_lossy(),
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--save",
            "",
        ]
        .map(String::from)
        .to_vec();
        let process = ChildProcess::new("redis", "redis-server", args, Vec::new(), log_dir);
        let mut redis = DurableRedis {
            process,
            port,
            data_dir,
        };
        redis.restart(true)?;
        Ok(redis)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn kill9(&mut self) {
        self.process.kill9();
    }

    /// Starts it again on the same port, with its data or (`keep_data` false) empty, and
    /// waits until it answers PING (after loading its append-only file).
    pub fn restart(&mut self, keep_data: bool) -> Result<(), String> {
        self.process.kill9();
        if !keep_data {
            let _ = std::fs::remove_dir_all(&self.data_dir);
        }
        std::fs::create_dir_all(&self.data_dir).map_err(|e| e.to_string())?;
        self.process.spawn()?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if super::redis_ping(self.port) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(self.process.failure("does not answer PING"))
    }
}
