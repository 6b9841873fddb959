//! Real Redis topologies (contract §10): the harness itself (plain redis-rs commands against
//! a cluster and a Sentinel set-up, failovers observed), the store contract on each, and the
//! service through failovers (failover.rs) and without a writable primary (fail_closed.rs).

mod fail_closed;
mod failover;

use crate::common::topology::cluster::RedisCluster;
use crate::common::topology::sentinel::RedisSentinels;
use crate::common::topology::{query, wait_for_replicas};
use crate::common::{TestApp, payin_2026, test_config, test_settings};
use crate::store_contract::the_whole_contract;
use payments_gateway::config::{RedisConfig, RedisTopology, StoreConfig};
use payments_gateway::store::Store;
use payments_gateway::store::redis::RedisStore;
use secrecy::SecretString;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

fn cluster_config(cluster: &RedisCluster, wait_replicas: u32) -> RedisConfig {
    let seeds = cluster.seed_urls().into_iter().map(SecretString::from);
    RedisConfig {
        topology: RedisTopology::Cluster(seeds.collect()),
        wait_replicas,
    }
}

fn sentinel_config(sentinels: &RedisSentinels, wait_replicas: u32) -> RedisConfig {
    RedisConfig {
        topology: RedisTopology::Sentinel {
            sentinels: sentinels.sentinels(),
            master: sentinels.master_name().to_owned(),
        },
        wait_replicas,
    }
}

/// Wiremock as Novasend: creates any payin it is asked for, and reports those it created as
/// still processing and any other as unknown (404), as Novasend does: a retry that resumes
/// an interrupted create reconciles with a GET first, and must not be told that a payin
/// Novasend never received exists.
async fn novasend() -> MockServer {
    let server = MockServer::start().await;
    let created = Arc::new(Mutex::new(HashSet::<String>::new()));
    let creates = created.clone();
    Mock::given(method("POST"))
        .and(path("/v1/payin/sessions"))
        .respond_with(move |request: &Request| {
            let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
            let reference = body["reference"].as_str().unwrap();
            creates.lock().unwrap().insert(reference.to_owned());
            ResponseTemplate::new(201).set_body_json(payin_2026(reference, "processing", "none"))
        })
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex("^/v1/payin/[^/]+$"))
        .respond_with(move |request: &Request| {
            let reference = request.url.path().rsplit('/').next().unwrap();
            if created.lock().unwrap().contains(reference) {
                ResponseTemplate::new(200).set_body_json(payin_2026(
                    reference,
                    "processing",
                    "none",
                ))
            } else {
                let body = serde_json::json!({"message": "not found"});
                ResponseTemplate::new(404).set_body_json(body)
            }
        })
        .mount(&server)
        .await;
    server
}

/// How many creates (POSTs) Novasend received for each reference.
async fn posts_per_reference(novasend: &MockServer) -> HashMap<String, usize> {
    let mut posts = HashMap::new();
    for request in novasend.received_requests().await.unwrap_or_default() {
        if request.method.as_str() == "POST" && request.url.path() == "/v1/payin/sessions" {
            let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
            let reference = body["reference"].as_str().unwrap_or_default().to_owned();
            *posts.entry(reference).or_default() += 1;
        }
    }
    posts
}

/// The service over Novasend (wiremock) and `redis`; polling far away, so only what a test
/// does changes a payin.
async fn spawn_app(novasend: &MockServer, redis: RedisConfig) -> TestApp {
    let settings = payments_gateway::payments::PaymentsSettings {
        poll_interval: Duration::from_secs(600),
        ..test_settings()
    };
    let mut config = test_config(&novasend.uri(), None, settings);
    config.store = StoreConfig::Redis(redis);
    TestApp::spawn(config).await
}

#[test]
fn the_cluster_harness_spreads_keys_and_promotes_a_replica() {
    let mut cluster = RedisCluster::start();
    assert_eq!(cluster.primaries().len(), 3);
    assert_eq!(cluster.seed_urls().len(), 6);
    // Plain connections to one node each: a key goes to the primary of its slot.
    for i in 0..30 {
        let key = format!("harness:{i}");
        let port = cluster.primary_for_key(&key);
        let _: () = query(port, &["SET", &key, "v"]).unwrap();
    }
    let spread = cluster.keys_per_primary();
    assert_eq!(spread.values().sum::<u64>(), 30);
    assert!(
        spread.values().filter(|&&n| n > 0).count() >= 2,
        "keys on several primaries: {spread:?}"
    );
    let victim = cluster.primary_for_key("harness:0");
    wait_for_replicas(victim, 1);

    cluster.kill(victim);
    let promoted = cluster.wait_for_promotion(victim);
    eprintln!(
        "cluster: primary killed → promotion observed in {:?}",
        cluster.killed_at(victim).elapsed()
    );
    assert_ne!(promoted, victim);
    assert_eq!(cluster.primary_for_key("harness:0"), promoted);
    let value: String = query(promoted, &["GET", "harness:0"]).unwrap();
    assert_eq!(value, "v", "the replica had the key");
    let _: () = query(promoted, &["SET", "harness:0", "w"]).unwrap();
    assert_eq!(cluster.primaries().len(), 3);
}

#[test]
fn the_sentinel_harness_promotes_the_replica_when_the_primary_dies() {
    let mut sentinels = RedisSentinels::start();
    assert_eq!(sentinels.sentinels().len(), 3);
    let primary = sentinels.primary_port();
    let _: () = query(primary, &["SET", "harness", "v"]).unwrap();
    wait_for_replicas(primary, 1);

    assert_eq!(sentinels.kill_primary(), primary);
    let promoted = sentinels.wait_for_new_primary();
    eprintln!(
        "sentinel: primary killed → promotion observed in {:?}",
        sentinels.lost_at().elapsed()
    );
    assert_ne!(promoted, primary);
    assert_eq!(sentinels.primary_port(), promoted);
    let value: String = query(promoted, &["GET", "harness"]).unwrap();
    assert_eq!(value, "v");
    let _: () = query(promoted, &["SET", "harness", "w"]).unwrap();
}

#[test]
fn the_sentinel_harness_demotes_the_primary_and_fails_over_on_request() {
    let mut sentinels = RedisSentinels::start();
    let demoted = sentinels.demote_primary();
    let refused = query::<()>(demoted, &["SET", "harness", "v"]).unwrap_err();
    assert_eq!(refused.code(), Some("READONLY"), "{refused}");
    assert_eq!(
        sentinels.primary_port(),
        demoted,
        "the sentinels still name it"
    );

    sentinels.fail_over();
    let promoted = sentinels.wait_for_new_primary();
    eprintln!(
        "sentinel: primary demoted → SENTINEL FAILOVER promotion observed in {:?}",
        sentinels.lost_at().elapsed()
    );
    assert_ne!(promoted, demoted);
    let _: () = query(promoted, &["SET", "harness", "v"]).unwrap();
}

#[test]
fn the_sentinel_harness_stops_and_restarts_the_replica() {
    let mut sentinels = RedisSentinels::start();
    let primary = sentinels.primary_port();
    sentinels.stop_replica();
    let _: () = query(primary, &["SET", "harness", "v"]).unwrap();
    let acked: i64 = query(primary, &["WAIT", "1", "200"]).unwrap();
    assert_eq!(acked, 0, "no replica to acknowledge");
    sentinels.start_replica();
    let _: () = query(primary, &["SET", "harness", "w"]).unwrap();
    wait_for_replicas(primary, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_keeps_the_contract_on_a_cluster_and_spreads_its_keys() {
    let cluster = RedisCluster::start();
    // Every primary has a replica: each claim's WAIT goes to its own slot's primary.
    let config = cluster_config(&cluster, 1);
    // Before each part empties the cluster, how many primaries the previous part wrote to.
    let spread = Mutex::new(0);
    the_whole_contract(|| {
        let used = cluster
            .keys_per_primary()
            .values()
            .filter(|&&n| n > 0)
            .count();
        let mut most = spread.lock().unwrap();
        *most = (*most).max(used);
        cluster.flushall();
        Arc::new(RedisStore::new(&config).expect("the store accepts a cluster")) as Arc<dyn Store>
    })
    .await;
    let used = cluster
        .keys_per_primary()
        .values()
        .filter(|&&n| n > 0)
        .count();
    let most = (*spread.lock().unwrap()).max(used);
    assert!(
        most >= 2,
        "the contract's keys all landed on one primary: {:?}",
        cluster.keys_per_primary()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_keeps_the_contract_through_sentinel() {
    let sentinels = RedisSentinels::start();
    let config = sentinel_config(&sentinels, 1);
    the_whole_contract(|| {
        sentinels.command(sentinels.primary_port(), &["FLUSHALL"]);
        Arc::new(RedisStore::new(&config).expect("the store accepts Sentinel")) as Arc<dyn Store>
    })
    .await;
}

/// On a cluster INFO answers a map, one text per primary: the start-up check of
/// persistence reads it at once (it returns after its first answer) instead of retrying,
/// and redialing the cluster, for a minute.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_forgetful_redis_check_reads_info_on_a_cluster() {
    let cluster = RedisCluster::start();
    let store = Arc::new(RedisStore::new(&cluster_config(&cluster, 0)).unwrap());
    let answered = tokio::time::timeout(Duration::from_secs(10), store.warn_if_forgetful()).await;
    assert!(
        answered.is_ok(),
        "warn_if_forgetful never read INFO on a cluster"
    );
}

/// MARK_REFUND_SENT writes nothing when the payin already holds the mark. A retry of a
/// refund whose mark no replica acknowledged (the first attempt answered UNAVAILABLE), on
/// another replica of the service, must still wait for the mark itself: WAIT covers the
/// primary's replication offset as of the connection's last command, not only the writes
/// of its own connection. The Redis replica is paused (SIGSTOP): connected, acknowledging
/// nothing new.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_retry_on_another_replica_waits_for_the_mark_itself() {
    use crate::common::topology::info_field;
    use payments_gateway::store::Claim;
    let sentinels = RedisSentinels::start();
    let primary = sentinels.primary_port();
    let replica = sentinels
        .data_ports()
        .into_iter()
        .find(|&p| p != primary)
        .unwrap();
    // A payin as the store keeps it (the mark only needs the hash to exist).
    sentinels.command(primary, &["HSET", "pgw:payin:rf-1", "v", "1", "data", "{}"]);
    wait_for_replicas(primary, 1);
    let pid = info_field(replica, "server", "process_id").unwrap();
    let signal = |sig: &str| {
        let status = std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap();
        assert!(status.success());
    };
    // The replica lags (still connected, acknowledging nothing new).
    signal("-STOP");
    let first = RedisStore::new(&sentinel_config(&sentinels, 1)).unwrap();
    let marked = first.mark_refund_sent("rf-1", "key-1").await;
    let retry = RedisStore::new(&sentinel_config(&sentinels, 1)).unwrap();
    let again = retry.mark_refund_sent("rf-1", "key-1").await;
    signal("-CONT");
    eprintln!("first attempt: {marked:?}; retry on another replica: {again:?}");
    assert!(
        marked.is_err(),
        "no replica acknowledged the mark: {marked:?}"
    );
    assert!(
        !matches!(again, Ok(Some(Claim::AlreadyHeld))),
        "the retry was told the replica holds the mark, which it does not: {again:?}"
    );
}
