//! Where the service keeps shared state (contract §10): exactly one of PAYMENTS_REDIS_URL,
//! PAYMENTS_REDIS_CLUSTER_URLS or PAYMENTS_REDIS_SENTINELS (with PAYMENTS_REDIS_SENTINEL_MASTER);
//! none: the in-process store.

use super::ServeArgs;
use secrecy::SecretString;

/// Where the service keeps shared state.
#[derive(Clone)]
pub enum StoreConfig {
    Redis(RedisConfig),
    InProcess,
}

#[derive(Clone)]
pub struct RedisConfig {
    pub topology: RedisTopology,
    /// Replicas that must acknowledge a claim or a refund-sent mark before a provider call.
    pub wait_replicas: u32,
}

impl RedisConfig {
    /// One Redis at `url`, no replica acknowledgement asked.
    pub fn single(url: &str) -> Self {
        Self {
            topology: RedisTopology::Single(SecretString::from(url.to_owned())),
            wait_replicas: 0,
        }
    }
}

/// How the service finds the Redis primary that holds a key.
#[derive(Clone)]
pub enum RedisTopology {
    /// One Redis: `redis://` or `rediss://`.
    Single(SecretString),
    /// A Redis Cluster's seed nodes, each a `redis://` or `rediss://` URL.
    Cluster(Vec<SecretString>),
    /// The primary named `master` (and found again after a failover) by these sentinels.
    Sentinel {
        sentinels: Vec<String>,
        master: String,
    },
}

const URL: &str = "PAYMENTS_REDIS_URL";
const CLUSTER: &str = "PAYMENTS_REDIS_CLUSTER_URLS";
const SENTINELS: &str = "PAYMENTS_REDIS_SENTINELS";
const SENTINEL_MASTER: &str = "PAYMENTS_REDIS_SENTINEL_MASTER";
const WAIT_REPLICAS: &str = "PAYMENTS_REDIS_WAIT_REPLICAS";
/// More than any deployment has replicas: a typo (1000) would refuse every create.
const MAX_WAIT_REPLICAS: u32 = 16;

pub(super) fn read_store(args: &ServeArgs) -> Result<StoreConfig, Vec<String>> {
    fn set(v: &Option<String>) -> Option<&str> {
        v.as_deref().map(str::trim).filter(|v| !v.is_empty())
    }
    let (url, cluster, sentinels) = (
        set(&args.redis_url),
        set(&args.redis_cluster_urls),
        set(&args.redis_sentinels),
    );
    let master = set(&args.redis_sentinel_master);
    let given: Vec<&str> = [(URL, url), (CLUSTER, cluster), (SENTINELS, sentinels)]
        .into_iter()
        .filter_map(|(name, value)| value.map(|_| name))
        .collect();
    if given.len() > 1 {
        return Err(vec![format!(
            "{}: set only one of them (one Redis, a cluster, or sentinels)",
            given.join(", ")
        )]);
    }
    let mut errors = Vec::new();
    let wait_replicas = read_wait_replicas(args.redis_wait_replicas.trim())
        .map_err(|e| errors.push(format!("{WAIT_REPLICAS}: {e}")))
        .unwrap_or(0);
    if master.is_some() && sentinels.is_none() {
        errors.push(format!("{SENTINEL_MASTER}: only with {SENTINELS}"));
    }
    let topology = match (url, cluster, sentinels) {
        (Some(url), _, _) => redis_url(url)
            .map(RedisTopology::Single)
            .map_err(|e| errors.push(format!("{URL}: {e}")))
            .ok(),
        (_, Some(seeds), _) => read_seeds(seeds)
            .map(RedisTopology::Cluster)
            .map_err(|e| errors.push(format!("{CLUSTER}: {e}")))
            .ok(),
        (_, _, Some(sentinels)) => {
            let sentinels = read_sentinels(sentinels)
                .map_err(|e| errors.push(format!("{SENTINELS}: {e}")))
                .ok();
            if master.is_none() {
                errors.push(format!("{SENTINEL_MASTER}: required with {SENTINELS}"));
            }
            sentinels
                .zip(master)
                .map(|(sentinels, master)| RedisTopology::Sentinel {
                    sentinels,
                    master: master.to_owned(),
                })
        }
        (None, None, None) => {
            if wait_replicas > 0 {
                errors.push(format!(
                    "{WAIT_REPLICAS}: needs a Redis ({URL}, {CLUSTER} or {SENTINELS})"
                ));
            }
            None
        }
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(match topology {
        Some(topology) => StoreConfig::Redis(RedisConfig {
            topology,
            wait_replicas,
        }),
        None => StoreConfig::InProcess,
    })
}

fn redis_url(raw: &str) -> Result<SecretString, String> {
    match raw.starts_with("redis://") || raw.starts_with("rediss://") {
        true => Ok(SecretString::from(raw.to_owned())),
        false => Err("must start with redis:// or rediss://".into()),
    }
}

fn read_seeds(raw: &str) -> Result<Vec<SecretString>, String> {
    let seeds = read_list(raw, |seed| {
        redis_url(seed).map_err(|_| "each seed must start with redis:// or rediss://".to_owned())
    })?;
    Ok(seeds)
}

/// A comma-separated list, at least one item.
fn read_list<T>(raw: &str, item: impl Fn(&str) -> Result<T, String>) -> Result<Vec<T>, String> {
    let items = raw
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(item)
        .collect::<Result<Vec<_>, _>>()?;
    match items.is_empty() {
        true => Err("lists nothing".into()),
        false => Ok(items),
    }
}

fn read_sentinels(raw: &str) -> Result<Vec<String>, String> {
    read_list(raw, |sentinel| match sentinel.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {
            Ok(sentinel.to_owned())
        }
        // The value is not quoted: a URL with a password pasted here would be printed.
        _ => Err("each sentinel must be host:port".to_owned()),
    })
}

fn read_wait_replicas(raw: &str) -> Result<u32, String> {
    match raw.parse::<u32>() {
        Ok(n) if n <= MAX_WAIT_REPLICAS => Ok(n),
        _ => Err(format!(
            "must be a whole number from 0 to {MAX_WAIT_REPLICAS}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::defaults;

    fn read(edit: impl FnOnce(&mut ServeArgs)) -> Result<StoreConfig, Vec<String>> {
        let mut args = defaults();
        edit(&mut args);
        read_store(&args)
    }

    #[test]
    fn two_topologies_are_one_clear_error_naming_both() {
        let errors = read(|a| {
            a.redis_url = Some("redis://one:6379".into());
            a.redis_cluster_urls = Some("redis://a:7000".into());
        })
        .err()
        .unwrap();
        assert_eq!(
            errors,
            [
                "PAYMENTS_REDIS_URL, PAYMENTS_REDIS_CLUSTER_URLS: set only one of them (one Redis, a cluster, or sentinels)"
            ]
        );
    }

    #[test]
    fn each_topology_reads() {
        let cluster =
            read(|a| a.redis_cluster_urls = Some("redis://a:7000, redis://b:7001".into()));
        assert!(
            matches!(cluster, Ok(StoreConfig::Redis(RedisConfig { topology: RedisTopology::Cluster(seeds), .. })) if seeds.len() == 2)
        );
        let sentinel = read(|a| {
            a.redis_sentinels = Some("s1:26379,s2:26379".into());
            a.redis_sentinel_master = Some("mymaster".into());
            a.redis_wait_replicas = "1".into();
        });
        assert!(matches!(
            sentinel,
            Ok(StoreConfig::Redis(RedisConfig { topology: RedisTopology::Sentinel { ref sentinels, ref master }, wait_replicas: 1 }))
                if sentinels.len() == 2 && master == "mymaster"
        ));
        assert!(matches!(read(|_| {}), Ok(StoreConfig::InProcess)));
    }

    #[test]
    fn bad_values_are_all_reported() {
        let errors = read(|a| {
            a.redis_sentinels = Some("s1,s2:x".into());
            a.redis_wait_replicas = "many".into();
        })
        .err()
        .unwrap();
        assert_eq!(
            errors,
            [
                "PAYMENTS_REDIS_WAIT_REPLICAS: must be a whole number from 0 to 16",
                "PAYMENTS_REDIS_SENTINELS: each sentinel must be host:port",
                "PAYMENTS_REDIS_SENTINEL_MASTER: required with PAYMENTS_REDIS_SENTINELS",
            ]
        );
        let errors = read(|a| a.redis_cluster_urls = Some("http://a:7000".into()))
            .err()
            .unwrap();
        assert_eq!(
            errors,
            ["PAYMENTS_REDIS_CLUSTER_URLS: each seed must start with redis:// or rediss://"]
        );
        let errors = read(|a| a.redis_wait_replicas = "1".into()).err().unwrap();
        assert_eq!(
            errors,
            [
                "PAYMENTS_REDIS_WAIT_REPLICAS: needs a Redis (PAYMENTS_REDIS_URL, PAYMENTS_REDIS_CLUSTER_URLS or PAYMENTS_REDIS_SENTINELS)"
            ]
        );
    }
}
