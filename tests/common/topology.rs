//! Real Redis topologies for failover tests: a Redis Cluster (3 primaries, 3 replicas) and a
//! Sentinel set-up (primary, replica, 3 sentinels), each a set of redis-server processes on
//! loopback ports, killed with SIGKILL when a test asks and on drop.
//!
//! Everything here blocks (std::process, redis-rs's sync connection). An async test that runs
//! the service meanwhile wraps the long waits in `tokio::task::block_in_place`, so the
//! runtime's other worker keeps serving while the harness polls.

pub mod cluster;
pub mod sentinel;

use super::replica::RunDir;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicU32;
use std::time::{Duration, Instant};

/// The longest any wait here lasts before it fails the test. A cluster failover with a 1 s
/// node timeout takes 2–4 s and a Sentinel one 3–6 s; a Sentinel election that splits its
/// votes is retried after twice the failover timeout (10 s), still well within this.
pub const WAIT_LIMIT: Duration = Duration::from_secs(20);
/// How often a wait probes again: short against a failover, long against our own load.
const POLL: Duration = Duration::from_millis(50);
/// One connection per command; a node that does not answer within this counts as down.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

/// Probes until `probe` gives a value; panics with `what` after `limit`.
pub fn wait_until<T>(what: &str, limit: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(POLL);
    }
}

/// Runs one command on 127.0.0.1:`port` on a fresh connection.
pub fn query<T: redis::FromRedisValue>(port: u16, args: &[&str]) -> redis::RedisResult<T> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}"))?;
    let mut connection = client.get_connection_with_timeout(COMMAND_TIMEOUT)?;
    connection.set_read_timeout(Some(COMMAND_TIMEOUT))?;
    connection.set_write_timeout(Some(COMMAND_TIMEOUT))?;
    let mut cmd = redis::cmd(args[0]);
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    cmd.query(&mut connection)
}

/// Runs one command that must succeed.
pub fn command(port: u16, args: &[&str]) -> redis::Value {
    query(port, args).unwrap_or_else(|e| panic!("{args:?} on port {port}: {e}"))
}

/// One `field:value` line of INFO `section`, if the node answers.
pub fn info_field(port: u16, section: &str, field: &str) -> Option<String> {
    let info: String = query(port, &["INFO", section]).ok()?;
    info.lines().find_map(|line| {
        line.strip_prefix(field)
            .and_then(|rest| rest.strip_prefix(':'))
            .map(|value| value.trim().to_owned())
    })
}

/// Whether `port` is a replica whose link to its primary is up and done with its first sync.
pub fn replica_in_sync(port: u16) -> bool {
    info_field(port, "replication", "master_link_status").as_deref() == Some("up")
        && info_field(port, "replication", "master_sync_in_progress").as_deref() == Some("0")
}

/// Whether the primary on `port` has `replicas` replicas online that acknowledged all it has
/// written. The replica's side is not enough: after a diskless sync the primary streams
/// nothing until the replica's first ACK (up to 1 s later). Nor is WAIT from another
/// connection: WAIT counts acknowledgements of the calling connection's own writes, and a
/// fresh connection has none, so it answers at once.
pub fn replicas_caught_up(port: u16, replicas: usize) -> bool {
    let Ok(info) = query::<String>(port, &["INFO", "replication"]) else {
        return false;
    };
    let field = |line: &str, name: &str| {
        let value = line
            .split(',')
            .find_map(|f| f.strip_prefix(name)?.strip_prefix('='));
        value.map(str::to_owned)
    };
    let written = info
        .lines()
        .find_map(|l| l.strip_prefix("master_repl_offset:"));
    let Some(written) = written.and_then(|w| w.trim().parse::<u64>().ok()) else {
        return false;
    };
    let caught_up = info
        .lines()
        .filter(|line| line.starts_with("slave") && line.contains(":ip="))
        .filter(|line| field(line, "state").as_deref() == Some("online"))
        .filter_map(|line| field(line, "offset")?.parse::<u64>().ok())
        .filter(|&acked| acked >= written)
        .count();
    caught_up >= replicas
}

/// Waits until the primary on `port` has `replicas` replicas holding all it wrote, so that
/// killing it loses nothing.
pub fn wait_for_replicas(port: u16, replicas: usize) {
    wait_until(
        &format!("{replicas} replica(s) of {port} to catch up"),
        WAIT_LIMIT,
        || replicas_caught_up(port, replicas).then_some(()),
    );
}

fn is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// A port for a cluster node: it and its bus port (port + 10000) free, both below Linux's
/// ephemeral range (32768 and up), so no outgoing connection takes them between this check
/// and redis-server's bind; a pick that is taken anyway makes the node start again on another.
fn cluster_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    super::port_in(16_000, &NEXT, |port| {
        is_free(port) && is_free(port + 10_000)
    })
}

/// One redis-server (or sentinel) process of a topology, with its log in the topology's dir.
pub struct Node {
    pub name: String,
    pub port: u16,
    args: Vec<String>,
    child: Option<Child>,
}

impl Node {
    /// Starts a node on a port from `pick`; `args(port)` is its command line. A port another
    /// process took meanwhile makes it try another one.
    fn start(name: &str, pick: fn() -> u16, args: impl Fn(u16) -> Vec<String>) -> Node {
        for _ in 0..5 {
            let port = pick();
            let mut node = Node {
                name: name.to_owned(),
                port,
                args: args(port),
                child: None,
            };
            if node.spawn() {
                return node;
            }
        }
        panic!("{name}: redis-server did not start on any of 5 free ports");
    }

    /// (Re)starts the process with its arguments; false if it exited (port taken).
    fn spawn(&mut self) -> bool {
        let mut child = Command::new("redis-server")
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (scripts/test installs it)");
        let pid = child.id().to_string();
        let started = wait_until(
            &format!("{} to answer on port {}", self.name, self.port),
            Duration::from_secs(10),
            || {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    return Some(false);
                }
                // Answering is not enough: it must be our process, not another's on this port.
                let ours = info_field(self.port, "server", "process_id").as_deref() == Some(&pid);
                ours.then_some(true)
            },
        );
        if started {
            self.child = Some(child);
        }
        started
    }

    /// Restarts it on the same port with other arguments (a replica of another primary).
    fn restart_with(&mut self, args: Vec<String>) {
        self.kill();
        self.args = args;
        assert!(
            self.spawn(),
            "{} did not restart on {}",
            self.name,
            self.port
        );
    }

    /// SIGKILL: no shutdown, no goodbye to clients, as when a machine dies.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A data node's command line: no persistence (the tests' data is throwaway) and diskless
/// full syncs without the default 5 s delay, so a replica is in sync right away.
fn data_node_args(dir: &Path, name: &str, port: u16) -> Vec<String> {
    let log = dir.join(format!("{name}.log"));
    [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--repl-diskless-sync",
        "yes",
        "--repl-diskless-sync-delay",
        "0",
        "--dir",
        &dir.display().to_string(),
        "--logfile",
        &log.display().to_string(),
    ]
    .map(str::to_owned)
    .to_vec()
}

/// Keeps a topology's dir (its logs) when a test fails, and says where.
fn keep_logs_if_failing(dir: &mut RunDir) {
    if std::thread::panicking() {
        dir.keep();
        eprintln!("redis logs kept in {}", dir.path.display());
    }
}
