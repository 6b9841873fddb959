//! A primary, its replica and three sentinels (quorum 2) watching them.

use super::{
    Node, POLL, RunDir, WAIT_LIMIT, command, data_node_args, info_field, keep_logs_if_failing,
    query, replica_in_sync, replicas_caught_up, wait_until,
};
use crate::common::free_port;
use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

const MASTER: &str = "payments";

/// A sentinel's command line: its config file (each its own, since a sentinel rewrites it
/// with what it learns) and `--sentinel`.
fn sentinel_args(dir: &Path, name: &str, primary: u16, port: u16) -> Vec<String> {
    let conf = dir.join(format!("{name}.conf"));
    let log = dir.join(format!("{name}.log"));
    // `monitor` comes first: the other `sentinel … <master>` lines refer to it. A primary
    // silent for 1 s is down; a failover that stalls is retried after 2 × 5 s.
    let text = format!(
        "port {port}\nbind 127.0.0.1\nprotected-mode no\ndir {dir}\nlogfile {log}\n\
         sentinel resolve-hostnames no\n\
         sentinel monitor {MASTER} 127.0.0.1 {primary} 2\n\
         sentinel down-after-milliseconds {MASTER} 1000\n\
         sentinel failover-timeout {MASTER} 5000\n\
         sentinel parallel-syncs {MASTER} 1\n",
        dir = dir.display(),
        log = log.display(),
    );
    std::fs::write(&conf, text).expect("a sentinel config file");
    vec![conf.display().to_string(), "--sentinel".to_owned()]
}

/// `SENTINEL replicas|sentinels <master>`: one map of fields per instance.
fn instances(sentinel: u16, what: &str) -> Option<Vec<HashMap<String, String>>> {
    let list: Vec<Vec<String>> = query(sentinel, &["SENTINEL", what, MASTER]).ok()?;
    let pairs = |flat: Vec<String>| {
        let mut map = HashMap::new();
        let mut it = flat.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            map.insert(k, v);
        }
        map
    };
    Some(list.into_iter().map(pairs).collect())
}

/// The primary's port according to the sentinel on `sentinel`.
fn master_port(sentinel: u16) -> Option<u16> {
    let addr: Vec<String> =
        query(sentinel, &["SENTINEL", "get-master-addr-by-name", MASTER]).ok()?;
    addr.get(1)?.parse().ok()
}

pub struct RedisSentinels {
    data: Vec<Node>,
    sentinels: Vec<Node>,
    /// The primary a test last killed or demoted, and when.
    lost: Option<(u16, Instant)>,
    dir: RunDir,
}

impl RedisSentinels {
    /// Starts the primary, its replica (in sync), then the sentinels; returns once every
    /// sentinel names the primary, knows the replica as healthy and knows the two others.
    pub fn start() -> Self {
        let dir = RunDir::new("redis-sentinel");
        let primary = Node::start("redis-a", free_port, |port| {
            data_node_args(&dir.path, "redis-a", port)
        });
        let replica = Node::start("redis-b", free_port, |port| {
            let mut args = data_node_args(&dir.path, "redis-b", port);
            args.extend([
                "--replicaof".into(),
                "127.0.0.1".into(),
                primary.port.to_string(),
            ]);
            args
        });
        // Sentinels find replicas through the primary's INFO, sent on connecting; with the
        // replica in sync first, they know it at once instead of at the next INFO (10 s).
        wait_until("redis-b to sync with redis-a", WAIT_LIMIT, || {
            (replica_in_sync(replica.port) && replicas_caught_up(primary.port, 1)).then_some(())
        });
        let sentinels = (0..3)
            .map(|i| {
                let name = format!("sentinel{i}");
                Node::start(&name, free_port, |port| {
                    sentinel_args(&dir.path, &name, primary.port, port)
                })
            })
            .collect();
        let topology = RedisSentinels {
            data: vec![primary, replica],
            sentinels,
            lost: None,
            dir,
        };
        let (primary, replica) = (topology.data[0].port, topology.data[1].port);
        // Sentinels meet through hello messages on the primary, every 2 s; before they have,
        // each would count only its own vote.
        wait_until("every sentinel to know the set-up", WAIT_LIMIT, || {
            topology
                .sentinel_ports()
                .iter()
                .all(|&s| {
                    let replica_ok = instances(s, "replicas").is_some_and(|replicas| {
                        replicas.iter().any(|r| {
                            r.get("port") == Some(&replica.to_string())
                                && r.get("flags").map(String::as_str) == Some("slave")
                        })
                    });
                    let peers = instances(s, "sentinels").map_or(0, |p| p.len());
                    master_port(s) == Some(primary) && replica_ok && peers == 2
                })
                .then_some(())
        });
        topology
    }

    fn sentinel_ports(&self) -> Vec<u16> {
        let running = self.sentinels.iter().filter(|s| s.is_running());
        running.map(|s| s.port).collect()
    }

    /// The sentinels' addresses, `127.0.0.1:<port>`.
    pub fn sentinels(&self) -> Vec<String> {
        let ports = self.sentinel_ports();
        ports.iter().map(|p| format!("127.0.0.1:{p}")).collect()
    }

    pub fn master_name(&self) -> &'static str {
        MASTER
    }

    /// The primary's port as the first sentinel that answers names it.
    pub fn primary_port(&self) -> u16 {
        let ports = self.sentinel_ports();
        wait_until("a sentinel to name the primary", WAIT_LIMIT, || {
            ports.iter().find_map(|&s| master_port(s))
        })
    }

    /// Ports of the running redis-servers (not the sentinels).
    pub fn data_ports(&self) -> Vec<u16> {
        let running = self.data.iter().filter(|n| n.is_running());
        running.map(|n| n.port).collect()
    }

    fn data_node(&mut self, port: u16) -> &mut Node {
        let node = self.data.iter_mut().find(|n| n.port == port);
        node.unwrap_or_else(|| panic!("no redis-server of ours on {port}"))
    }

    /// SIGKILLs the current primary; returns its port.
    pub fn kill_primary(&mut self) -> u16 {
        let port = self.primary_port();
        self.data_node(port).kill();
        self.lost = Some((port, Instant::now()));
        port
    }

    /// Makes the current primary a replica of a port where nothing listens, so it keeps
    /// answering PING and reads but refuses writes with READONLY, while the sentinels still
    /// name it: they take a primary that reports itself a replica for down (and fail over)
    /// only after down-after + 2 INFO periods (~21 s), which leaves a test a clear window
    /// with no writable primary. Its replica stays attached (Redis 7 keeps sub-replicas
    /// across REPLICAOF), so `fail_over` can promote it. Returns the demoted port.
    pub fn demote_primary(&mut self) -> u16 {
        let port = self.primary_port();
        let nowhere = free_port().to_string();
        command(port, &["REPLICAOF", "127.0.0.1", &nowhere]);
        assert_eq!(
            info_field(port, "replication", "role").as_deref(),
            Some("slave")
        );
        self.lost = Some((port, Instant::now()));
        port
    }

    /// Asks a sentinel to fail over now (SENTINEL FAILOVER), without waiting for agreement
    /// that the primary is down; retried while a sentinel answers that it cannot yet.
    pub fn fail_over(&self) {
        let sentinel = self.sentinel_ports()[0];
        let deadline = Instant::now() + WAIT_LIMIT;
        loop {
            match query::<redis::Value>(sentinel, &["SENTINEL", "FAILOVER", MASTER]) {
                Ok(_) => return,
                Err(e) => assert!(
                    Instant::now() < deadline,
                    "SENTINEL FAILOVER refused for {WAIT_LIMIT:?}: {e}"
                ),
            }
            std::thread::sleep(POLL);
        }
    }

    /// When the primary was last killed or demoted.
    pub fn lost_at(&self) -> Instant {
        self.lost.expect("a primary was killed or demoted").1
    }

    /// Waits until every running sentinel names another primary than the one lost, and that
    /// one reports itself a primary; returns its port.
    pub fn wait_for_new_primary(&self) -> u16 {
        let (old, _) = self.lost.expect("a primary was killed or demoted");
        let sentinels = self.sentinel_ports();
        wait_until(
            &format!("the sentinels to promote a replica of {old}"),
            WAIT_LIMIT,
            || {
                let named: Vec<Option<u16>> = sentinels.iter().map(|&s| master_port(s)).collect();
                let new = named[0].filter(|&p| p != old)?;
                let agreed = named.iter().all(|&p| p == Some(new));
                let writable = info_field(new, "replication", "role").as_deref() == Some("master");
                (agreed && writable).then_some(new)
            },
        )
    }

    /// SIGKILLs the running redis-server that is not the primary; returns its port.
    pub fn stop_replica(&mut self) -> u16 {
        let primary = self.primary_port();
        let replica = self.data_ports().into_iter().find(|&p| p != primary);
        let port = replica.expect("a running replica");
        self.data_node(port).kill();
        port
    }

    /// Starts the stopped redis-server again as a replica of the current primary; returns
    /// once it is in sync and the primary counts it.
    pub fn start_replica(&mut self) {
        let primary = self.primary_port();
        let dir = self.dir.path.clone();
        let node = self.data.iter_mut().find(|n| !n.is_running());
        let node = node.expect("a stopped redis-server");
        let mut args = data_node_args(&dir, &node.name, node.port);
        args.extend([
            "--replicaof".into(),
            "127.0.0.1".into(),
            primary.to_string(),
        ]);
        node.restart_with(args);
        let port = node.port;
        wait_until("the replica to be back in sync", WAIT_LIMIT, || {
            (replica_in_sync(port) && replicas_caught_up(primary, 1)).then_some(())
        });
    }

    pub fn command(&self, port: u16, args: &[&str]) -> redis::Value {
        command(port, args)
    }
}

impl Drop for RedisSentinels {
    fn drop(&mut self) {
        for node in self.sentinels.iter_mut().chain(self.data.iter_mut()) {
            node.kill();
        }
        keep_logs_if_failing(&mut self.dir);
    }
}
