//! The Redis store. Every check-then-act runs as one Lua script, so replicas cannot race.

use super::{Begin, IdempotencyScope, Store, StoreError, StoredOutcome, new_owner};
use crate::domain::Payin;
use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, Script};
use std::sync::LazyLock;
use std::time::Duration;

/// Bounds every Redis round trip, including the wait for a reconnection.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(3);

static BEGIN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rec = redis.call('HMGET', KEYS[1], 'fp', 'state', 'lease', 'code', 'msg', 'body')
if not rec[1] then
  redis.call('HSET', KEYS[1], 'fp', ARGV[1], 'state', 'running', 'owner', ARGV[2], 'lease', now + tonumber(ARGV[3]))
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  return {'acquired', '0'}
end
if rec[1] ~= ARGV[1] then return {'conflict'} end
if rec[2] == 'done' then return {'done', rec[4], rec[5], rec[6]} end
if rec[2] == 'running' and tonumber(rec[3]) > now then return {'running'} end
-- released after a transient outcome, or its owner's lease ran out: take it over
redis.call('HSET', KEYS[1], 'state', 'running', 'owner', ARGV[2], 'lease', now + tonumber(ARGV[3]))
return {'acquired', '1'}
",
    )
});

static FINISH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', 'done', 'code', ARGV[2], 'msg', ARGV[3], 'body', ARGV[4])
redis.call('HDEL', KEYS[1], 'owner', 'lease')
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
",
    )
});

static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', 'released')
redis.call('HDEL', KEYS[1], 'owner', 'lease')
return 1
",
    )
});

static FORGET: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
",
    )
});

/// Takes (or re-takes) a key-value claim for its holder; refreshes its expiry.
static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local v = redis.call('GET', KEYS[1])
if v and v ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
",
    )
});

static UNCLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
",
    )
});

static SAVE_PAYIN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local v = redis.call('HGET', KEYS[1], 'v')
local current = v and tonumber(v) or 0
if current ~= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'data', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
if ARGV[6] == '1' then redis.call('SET', KEYS[2], ARGV[5], 'PX', ARGV[4]) end
return 1
",
    )
});

pub struct RedisStore {
    connection: ConnectionManager,
}

impl RedisStore {
    /// Prepares a connection without dialing: the service starts even while Redis is away,
    /// and calls fail fast with `Unavailable` until it is back.
    pub fn new(url: &str) -> Result<Self, String> {
        let client = redis::Client::open(url)
            .map_err(|e| format!("invalid Redis URL: {}", e.kind_description()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let connection = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| format!("cannot prepare the Redis connection: {e}"))?;
        Ok(Self { connection })
    }

    async fn run<T: redis::FromRedisValue>(
        &self,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        let mut connection = self.connection.clone();
        bounded(invocation.invoke_async(&mut connection)).await
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

async fn bounded<T>(future: impl Future<Output = Result<T, RedisError>>) -> Result<T, StoreError> {
    match tokio::time::timeout(OPERATION_TIMEOUT, future).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => {
            tracing::warn!(error = %e.kind_description(), "redis call failed");
            Err(StoreError::Unavailable(format!(
                "Redis error ({})",
                e.kind_description()
            )))
        }
        Err(_) => {
            tracing::warn!("redis call timed out");
            Err(StoreError::Unavailable(
                "Redis did not answer in time".into(),
            ))
        }
    }
}

fn record_key(scope: IdempotencyScope<'_>) -> String {
    format!("pgw:idem:{}:{}", scope.operation, scope.key)
}

fn payin_key(reference: &str) -> String {
    format!("pgw:payin:{reference}")
}

fn provider_index_key(provider_reference: &str) -> String {
    format!("pgw:payin-by-provider:{provider_reference}")
}

fn reference_claim_key(reference: &str) -> String {
    format!("pgw:reference:{reference}")
}

fn refund_lock_key(reference: &str) -> String {
    format!("pgw:refund-lock:{reference}")
}

fn millis(d: Duration) -> u64 {
    d.as_millis().max(1) as u64
}

fn utf8(bytes: Vec<u8>) -> Result<String, StoreError> {
    String::from_utf8(bytes)
        .map_err(|_| StoreError::Corrupt("idempotency record is not UTF-8".into()))
}

#[async_trait]
impl Store for RedisStore {
    async fn begin(
        &self,
        scope: IdempotencyScope<'_>,
        fingerprint: &str,
        lease: Duration,
        ttl: Duration,
    ) -> Result<Begin, StoreError> {
        let owner = new_owner();
        let reply: Vec<Vec<u8>> = self
            .run(
                BEGIN
                    .key(record_key(scope))
                    .arg(fingerprint)
                    .arg(&owner)
                    .arg(millis(lease))
                    .arg(millis(ttl)),
            )
            .await?;
        let mut parts = reply.into_iter();
        let tag = parts.next().map(utf8).transpose()?.unwrap_or_default();
        match tag.as_str() {
            "acquired" => {
                let resumed = parts.next().is_some_and(|flag| flag == b"1");
                Ok(Begin::Acquired { owner, resumed })
            }
            "conflict" => Ok(Begin::Conflict),
            "running" => Ok(Begin::InFlight),
            "done" => {
                let (Some(code), Some(message), Some(body)) =
                    (parts.next(), parts.next(), parts.next())
                else {
                    return Err(StoreError::Corrupt(
                        "finished record lacks its outcome".into(),
                    ));
                };
                let code = utf8(code)?
                    .parse()
                    .map_err(|_| StoreError::Corrupt("stored code is not a number".into()))?;
                Ok(Begin::Replay(StoredOutcome {
                    code,
                    message: utf8(message)?,
                    body,
                }))
            }
            other => Err(StoreError::Corrupt(format!(
                "unknown begin reply `{other}`"
            ))),
        }
    }

    async fn finish(
        &self,
        scope: IdempotencyScope<'_>,
        owner: &str,
        outcome: &StoredOutcome,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let _: i64 = self
            .run(
                FINISH
                    .key(record_key(scope))
                    .arg(owner)
                    .arg(outcome.code)
                    .arg(&outcome.message)
                    .arg(&outcome.body[..])
                    .arg(millis(ttl)),
            )
            .await?;
        Ok(())
    }

    async fn release(&self, scope: IdempotencyScope<'_>, owner: &str) -> Result<(), StoreError> {
        let _: i64 = self.run(RELEASE.key(record_key(scope)).arg(owner)).await?;
        Ok(())
    }

    async fn forget(&self, scope: IdempotencyScope<'_>, owner: &str) -> Result<(), StoreError> {
        let _: i64 = self.run(FORGET.key(record_key(scope)).arg(owner)).await?;
        Ok(())
    }

    async fn claim_reference(
        &self,
        reference: &str,
        key: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let claimed: i64 = self
            .run(
                CLAIM
                    .key(reference_claim_key(reference))
                    .arg(key)
                    .arg(millis(ttl)),
            )
            .await?;
        Ok(claimed == 1)
    }

    async fn unclaim_reference(&self, reference: &str, key: &str) -> Result<(), StoreError> {
        let _: i64 = self
            .run(UNCLAIM.key(reference_claim_key(reference)).arg(key))
            .await?;
        Ok(())
    }

    async fn load_payin(&self, reference: &str) -> Result<Option<Payin>, StoreError> {
        let mut connection = self.connection.clone();
        let data: Option<Vec<u8>> = bounded(
            redis::cmd("HGET")
                .arg(payin_key(reference))
                .arg("data")
                .query_async(&mut connection),
        )
        .await?;
        data.map(|bytes| {
            serde_json::from_slice(&bytes)
                .map_err(|e| StoreError::Corrupt(format!("cached payin: {e}")))
        })
        .transpose()
    }

    async fn reference_for_provider(
        &self,
        provider_reference: &str,
    ) -> Result<Option<String>, StoreError> {
        let mut connection = self.connection.clone();
        bounded(
            redis::cmd("GET")
                .arg(provider_index_key(provider_reference))
                .query_async(&mut connection),
        )
        .await
    }

    async fn save_payin(
        &self,
        payin: &Payin,
        expected_version: u64,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let data = serde_json::to_vec(payin).expect("a payin serializes");
        let indexed = !payin.provider_reference.is_empty();
        let saved: i64 = self
            .run(
                SAVE_PAYIN
                    .key(payin_key(&payin.reference))
                    .key(provider_index_key(&payin.provider_reference))
                    .arg(expected_version)
                    .arg(payin.version)
                    .arg(data)
                    .arg(millis(ttl))
                    .arg(&payin.reference)
                    .arg(if indexed { "1" } else { "0" }),
            )
            .await?;
        Ok(saved == 1)
    }

    async fn lock_refund(
        &self,
        reference: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let locked: i64 = self
            .run(
                CLAIM
                    .key(refund_lock_key(reference))
                    .arg(holder)
                    .arg(millis(ttl)),
            )
            .await?;
        Ok(locked == 1)
    }

    async fn unlock_refund(&self, reference: &str, holder: &str) -> Result<(), StoreError> {
        let _: i64 = self
            .run(UNCLAIM.key(refund_lock_key(reference)).arg(holder))
            .await?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut connection = self.connection.clone();
        let _: String = bounded(redis::cmd("PING").query_async(&mut connection)).await?;
        Ok(())
    }
}
