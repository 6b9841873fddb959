//! The Redis store. Every check-then-act runs as one Lua script (scripts.rs), so replicas
//! cannot race; one connection (connection.rs) and one change feed (feed.rs) per replica.

mod connection;
mod feed;
mod keys;
mod operations;
mod replicated;
mod replies;
mod scripts;
mod slots;

use super::{CHANGE_FEED_CAPACITY, ChangeNotice, StoreError, new_owner};
use crate::config::RedisConfig;
use connection::{Connection, Dialer, OPERATION_TIMEOUT};
use keys::Keys;
use redis::RedisError;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;

/// The pub/sub channel on which every saved change is announced, as the payin's JSON.
const CHANGES_CHANNEL: &str = "pgw:payin-changes";

pub struct RedisStore {
    connection: Arc<Connection>,
    /// For claims when replicas must acknowledge them (replicated.rs): WAIT blocks its
    /// connection.
    claims: Option<Connection>,
    keys: Keys,
    /// Replicas that must have a claim or a refund-sent mark before a provider call.
    wait_replicas: u32,
    changes: broadcast::Sender<ChangeNotice>,
    subscriber: tokio::task::JoinHandle<()>,
    /// Names this replica's readiness key.
    replica: String,
}

impl Drop for RedisStore {
    fn drop(&mut self) {
        self.subscriber.abort();
    }
}

impl RedisStore {
    /// Prepares a connection without dialing: the service starts even while Redis is away,
    /// and calls fail fast with `Unavailable` until it is back.
    pub fn new(config: &RedisConfig) -> Result<Self, String> {
        use crate::config::RedisTopology;
        let keys = Keys::new(matches!(config.topology, RedisTopology::Cluster(_)));
        let connection = Arc::new(Connection::new(Dialer::new(&config.topology)?));
        let claims = match config.wait_replicas {
            0 => None,
            _ => Some(Connection::new(Dialer::new(&config.topology)?)),
        };
        let changes = broadcast::channel(CHANGE_FEED_CAPACITY).0;
        let subscriber = tokio::spawn(feed::follow_changes(connection.clone(), changes.clone()));
        Ok(Self {
            connection,
            claims,
            keys,
            wait_replicas: config.wait_replicas,
            changes,
            subscriber,
            replica: new_owner(),
        })
    }

    async fn run<T: redis::FromRedisValue>(
        &self,
        operation: &'static str,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        self.connection
            .call(operation, |mut c| async move {
                invocation.invoke_async(&mut c).await
            })
            .await
    }

    async fn query<T: redis::FromRedisValue>(
        &self,
        operation: &'static str,
        command: &redis::Cmd,
    ) -> Result<T, StoreError> {
        self.connection
            .call(operation, |mut c| async move {
                command.query_async(&mut c).await
            })
            .await
    }
}

trait KindDescription {
    fn kind_description(&self) -> String;
}

impl KindDescription for RedisError {
    /// The error without the URL it may quote (URLs can carry a password).
    fn kind_description(&self) -> String {
        format!("{:?}", self.kind())
    }
}

fn millis(d: Duration) -> u64 {
    d.as_millis().max(1) as u64
}

fn utf8(bytes: Vec<u8>) -> Result<String, StoreError> {
    String::from_utf8(bytes)
        .map_err(|_| StoreError::Corrupt("idempotency record is not UTF-8".into()))
}

fn number(bytes: Vec<u8>) -> Result<i64, StoreError> {
    utf8(bytes)?
        .parse()
        .map_err(|_| StoreError::Corrupt("a script answered something not a number".into()))
}

impl RedisStore {
    /// Warns once, when Redis first answers, if it would forget claims on a restart: a
    /// primary with no AOF and no replica (contract §10; README says which settings keep
    /// money safe). A cluster answers INFO for each primary.
    pub async fn warn_if_forgetful(self: Arc<Self>) {
        const TRIES: usize = 30;
        let info = redis::cmd("INFO")
            .arg("persistence")
            .arg("replication")
            .clone();
        for _ in 0..TRIES {
            if let Ok(answer) = self.query::<redis::Value>("info", &info).await {
                let forgetful = info_texts(answer).iter().any(|text| forgets(text));
                if forgetful {
                    tracing::warn!(
                        "Redis persists nothing (no AOF) and has no replica: a restart of it forgets idempotency records, reference claims and refund-sent marks"
                    );
                }
                return;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
}

/// INFO's text: one, or one per node (a cluster's map of node to text).
fn info_texts(answer: redis::Value) -> Vec<String> {
    use redis::Value;
    match answer {
        Value::Map(nodes) => nodes
            .into_iter()
            .flat_map(|(_, text)| info_texts(text))
            .collect(),
        other => redis::from_redis_value::<String>(other)
            .into_iter()
            .collect(),
    }
}

/// No AOF and no replica, by one node's INFO.
fn forgets(info: &str) -> bool {
    let field = |name: &str| {
        info.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
    };
    let aof = field("aof_enabled") == Some("1");
    let replicas = field("connected_slaves")
        .and_then(|n| n.parse::<u32>().ok())
        .unwrap_or(0);
    !aof && replicas == 0
}
