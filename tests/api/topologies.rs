//! Real Redis topologies (contract §10): the harness itself (plain redis-rs commands against
//! a cluster and a Sentinel set-up, failovers observed) and the service on each.

use crate::common::topology::cluster::RedisCluster;
use crate::common::topology::sentinel::RedisSentinels;
use crate::common::topology::{query, wait_for_replicas};

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
