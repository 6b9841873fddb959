//! A Redis Cluster of 6 nodes: 3 primaries with a replica each, joined by hand (CLUSTER MEET,
//! ADDSLOTSRANGE, REPLICATE) rather than by `redis-cli --cluster create`, whose own waits
//! poll once a second and whose placement of replicas we would have to read back anyway.

use super::{
    Node, RunDir, WAIT_LIMIT, cluster_port, command, data_node_args, keep_logs_if_failing, query,
    replica_in_sync, replicas_caught_up, wait_until,
};
use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

/// Three primaries split the 16384 slots as `redis-cli --cluster create` would.
const SLOT_RANGES: [(u16, u16); 3] = [(0, 5460), (5461, 10922), (10923, 16383)];

/// One line of CLUSTER NODES, as one node sees another.
#[derive(Clone, Debug)]
pub struct ClusterNode {
    pub id: String,
    pub port: u16,
    pub flags: Vec<String>,
    pub primary_id: Option<String>,
    pub slots: Vec<(u16, u16)>,
}

impl ClusterNode {
    pub fn is_primary(&self) -> bool {
        self.flags.iter().any(|f| f == "master")
    }

    /// Failing (`fail`), suspected (`fail?`) or not yet introduced (`handshake`).
    pub fn is_suspect(&self) -> bool {
        self.flags
            .iter()
            .any(|f| matches!(f.as_str(), "fail" | "fail?" | "handshake" | "noaddr"))
    }

    pub fn owns(&self, slot: u16) -> bool {
        self.slots.iter().any(|&(a, b)| a <= slot && slot <= b)
    }

    /// `<id> <ip:port@bus> <flags> <primary> <ping> <pong> <epoch> <link> <slots>...`
    fn parse(line: &str) -> Option<Self> {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let port = fields.get(1)?.split('@').next()?.rsplit(':').next()?;
        let slots = fields
            .get(8..)
            .unwrap_or_default()
            .iter()
            // `[slot->-id]`: a slot being migrated, which our tests never do.
            .filter(|s| !s.starts_with('['))
            .filter_map(|s| match s.split_once('-') {
                Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                None => s.parse().ok().map(|n| (n, n)),
            })
            .collect();
        Some(ClusterNode {
            id: fields.first()?.to_string(),
            port: port.parse().ok()?,
            flags: fields.get(2)?.split(',').map(str::to_owned).collect(),
            primary_id: fields.get(3).filter(|p| **p != "-").map(|p| p.to_string()),
            slots,
        })
    }
}

/// The cluster as the node on `port` sees it, if it answers.
pub fn cluster_nodes(port: u16) -> Option<Vec<ClusterNode>> {
    let text: String = query(port, &["CLUSTER", "NODES"]).ok()?;
    Some(text.lines().filter_map(ClusterNode::parse).collect())
}

fn cluster_state_ok(port: u16) -> bool {
    query::<String>(port, &["CLUSTER", "INFO"]).is_ok_and(|info| info.contains("cluster_state:ok"))
}

/// What a node held when a test killed it, to tell when its slots have a new primary.
struct Killed {
    id: String,
    slots: Vec<(u16, u16)>,
    at: Instant,
}

pub struct RedisCluster {
    nodes: Vec<Node>,
    killed: HashMap<u16, Killed>,
    dir: RunDir,
}

impl RedisCluster {
    /// Six nodes, joined as 3 primaries + 3 replicas; returns once every node reports
    /// `cluster_state:ok`, agrees on who holds which slots, and every replica is in sync.
    pub fn start() -> Self {
        let dir = RunDir::new("redis-cluster");
        let nodes: Vec<Node> = (0..6)
            .map(|i| {
                let name = format!("node{i}");
                Node::start(&name, cluster_port, |port| {
                    let mut args = data_node_args(&dir.path, &name, port);
                    let conf = dir.path.join(format!("{name}-nodes.conf"));
                    args.extend(
                        [
                            "--cluster-enabled",
                            "yes",
                            "--cluster-config-file",
                            &conf.display().to_string(),
                            // A primary silent for 1 s is suspected: failovers in ~2–4 s.
                            "--cluster-node-timeout",
                            "1000",
                        ]
                        .map(str::to_owned),
                    );
                    args
                })
            })
            .collect();
        let cluster = RedisCluster {
            nodes,
            killed: HashMap::new(),
            dir,
        };
        let ports = cluster.ports();
        // Distinct epochs up front, as redis-cli does, instead of letting the nodes resolve
        // six equal epochs by collisions after they meet.
        for (i, &port) in ports.iter().enumerate() {
            command(port, &["CLUSTER", "SET-CONFIG-EPOCH", &(i + 1).to_string()]);
        }
        for (&port, (first, last)) in ports.iter().zip(SLOT_RANGES) {
            let (first, last) = (first.to_string(), last.to_string());
            command(port, &["CLUSTER", "ADDSLOTSRANGE", &first, &last]);
        }
        for &port in &ports[1..] {
            command(
                ports[0],
                &["CLUSTER", "MEET", "127.0.0.1", &port.to_string()],
            );
        }
        wait_until("every node to know all six", WAIT_LIMIT, || {
            ports
                .iter()
                .all(|&port| {
                    cluster_nodes(port)
                        .is_some_and(|view| view.len() == 6 && view.iter().all(|n| !n.is_suspect()))
                })
                .then_some(())
        });
        for i in 0..3 {
            let primary_id = cluster.node_id(ports[i]);
            command(ports[i + 3], &["CLUSTER", "REPLICATE", &primary_id]);
        }
        wait_until(
            "the cluster to be ok with 3 replicas in sync",
            WAIT_LIMIT,
            || {
                let settled = ports.iter().all(|&port| {
                    cluster_state_ok(port)
                        && cluster_nodes(port).is_some_and(|view| {
                            let primaries = view.iter().filter(|n| n.is_primary()).count();
                            let replicas = view.iter().filter(|n| n.primary_id.is_some()).count();
                            primaries == 3 && replicas == 3 && view.iter().all(|n| !n.is_suspect())
                        })
                });
                let synced = ports[3..].iter().all(|&p| replica_in_sync(p));
                (settled && synced && ports[..3].iter().all(|&p| replicas_caught_up(p, 1)))
                    .then_some(())
            },
        );
        cluster
    }

    /// Ports of the nodes still running.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|n| n.is_running())
            .map(|n| n.port)
            .collect()
    }

    pub fn seed_urls(&self) -> Vec<String> {
        self.ports()
            .iter()
            .map(|port| format!("redis://127.0.0.1:{port}"))
            .collect()
    }

    /// The cluster as a running node sees it.
    pub fn view(&self) -> Vec<ClusterNode> {
        let ports = self.ports();
        wait_until("a running node to answer CLUSTER NODES", WAIT_LIMIT, || {
            ports.iter().find_map(|&port| cluster_nodes(port))
        })
    }

    fn node_id(&self, port: u16) -> String {
        let view = cluster_nodes(port).expect("the node answers");
        let me = view.iter().find(|n| n.flags.iter().any(|f| f == "myself"));
        me.expect("CLUSTER NODES lists myself").id.clone()
    }

    pub fn slot(&self, key: &str) -> u16 {
        let port = self.ports()[0];
        query::<u16>(port, &["CLUSTER", "KEYSLOT", key]).expect("CLUSTER KEYSLOT")
    }

    /// The port of the (healthy) primary that holds `key`'s slot.
    pub fn primary_for_key(&self, key: &str) -> u16 {
        let slot = self.slot(key);
        let view = self.view();
        let owner = view
            .iter()
            .find(|n| n.is_primary() && !n.is_suspect() && n.owns(slot));
        owner
            .unwrap_or_else(|| panic!("no healthy primary holds slot {slot}: {view:#?}"))
            .port
    }

    /// Ports of the healthy primaries.
    pub fn primaries(&self) -> Vec<u16> {
        let running = self.ports();
        let view = self.view();
        let mut primaries: Vec<u16> = view
            .iter()
            .filter(|n| n.is_primary() && !n.is_suspect() && !n.slots.is_empty())
            .map(|n| n.port)
            .filter(|port| running.contains(port))
            .collect();
        primaries.sort();
        primaries
    }

    /// How many keys each healthy primary holds (DBSIZE), by port.
    pub fn keys_per_primary(&self) -> BTreeMap<u16, u64> {
        self.primaries()
            .into_iter()
            .map(|port| (port, query(port, &["DBSIZE"]).expect("DBSIZE")))
            .collect()
    }

    /// Empties every primary (replicas follow; they refuse FLUSHALL themselves).
    pub fn flushall(&self) {
        for port in self.primaries() {
            command(port, &["FLUSHALL"]);
        }
    }

    pub fn command(&self, port: u16, args: &[&str]) -> redis::Value {
        command(port, args)
    }

    /// SIGKILLs the node on `port`, after noting which slots it held.
    pub fn kill(&mut self, port: u16) {
        let view = self.view();
        let me = view
            .iter()
            .find(|n| n.port == port)
            .expect("a cluster node");
        let (id, slots) = (me.id.clone(), me.slots.clone());
        let node = self.nodes.iter_mut().find(|n| n.port == port).unwrap();
        node.kill();
        let at = Instant::now();
        self.killed.insert(port, Killed { id, slots, at });
    }

    /// When the node on `port` was killed.
    pub fn killed_at(&self, port: u16) -> Instant {
        self.killed[&port].at
    }

    /// Waits until a replica holds the killed primary's slots in every running node's view
    /// and every running node reports `cluster_state:ok`; returns the new primary's port.
    pub fn wait_for_promotion(&self, killed_port: u16) -> u16 {
        let killed = &self.killed[&killed_port];
        let slot = killed
            .slots
            .first()
            .expect("the killed node was a primary")
            .0;
        let ports = self.ports();
        wait_until(
            &format!("a replica to take over slot {slot} from {killed_port}"),
            WAIT_LIMIT,
            || {
                let mut owners = ports.iter().map(|&port| {
                    let view = cluster_nodes(port)?;
                    let owner = view.iter().find(|n| {
                        n.is_primary() && !n.is_suspect() && n.owns(slot) && n.id != killed.id
                    })?;
                    cluster_state_ok(port).then_some(owner.port)
                });
                let first = owners.next()??;
                owners.all(|o| o == Some(first)).then_some(first)
            },
        )
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
        keep_logs_if_failing(&mut self.dir);
    }
}
