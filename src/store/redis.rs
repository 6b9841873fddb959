//! The Redis store. Every check-then-act runs as one Lua script, so replicas cannot race.

use super::{
    Begin, CHANGE_FEED_CAPACITY, ChangeNotice, Claim, IdempotencyScope, SaveOptions, Store,
    StoreError, StoredOutcome, new_owner,
};
use crate::domain::Payin;
use crate::telemetry::metrics::REDIS_ERRORS;
use async_trait::async_trait;
use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, Script};
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use tokio::sync::broadcast;

/// The pub/sub channel on which every saved change is announced, as the payin's JSON.
const CHANGES_CHANNEL: &str = "pgw:payin-changes";
const OPEN_PAYINS_KEY: &str = "pgw:open-payins";

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

static RENEW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local rec = redis.call('HMGET', KEYS[1], 'owner', 'lease')
if rec[1] ~= ARGV[1] then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local wanted = now + tonumber(ARGV[2])
if wanted > (tonumber(rec[2]) or 0) then redis.call('HSET', KEYS[1], 'lease', wanted) end
return 1
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
if v then return 2 end
return 1
",
    )
});

/// The refund-sent mark lives in the payin's own hash, so it expires with the payin and
/// with nothing else (contract §3).
static MARK_REFUND_SENT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local v = redis.call('HGET', KEYS[1], 'refund_sent')
if v and v ~= ARGV[1] then return 0 end
if v then return 2 end
redis.call('HSET', KEYS[1], 'refund_sent', ARGV[1])
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

/// Compare-and-set of a payin: the one place its state changes. In the same atomic step it
/// keeps the provider-reference index, the reference claim's lifetime and the reconciler's
/// schedule, and announces the change.
static SAVE_PAYIN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local v = redis.call('HGET', KEYS[1], 'v')
local current = v and tonumber(v) or 0
if current ~= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'data', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
if ARGV[6] == '1' then redis.call('SET', KEYS[2], ARGV[5], 'PX', ARGV[4]) end
-- the reference stays claimed for as long as its payin is kept
redis.call('PEXPIRE', KEYS[4], ARGV[4])
if ARGV[7] == '1' then
  redis.call('ZREM', KEYS[3], ARGV[5])
else
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('ZADD', KEYS[3], 'NX', now + tonumber(ARGV[9]), ARGV[5])
end
if ARGV[8] == '1' then redis.call('PUBLISH', ARGV[10], ARGV[3]) end
return 1
",
    )
});

static CLAIM_DUE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, reference in ipairs(due) do
  redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), reference)
end
return due
",
    )
});

static SCHEDULE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), ARGV[2])
",
    )
});

pub struct RedisStore {
    connection: ConnectionManager,
    changes: broadcast::Sender<ChangeNotice>,
    subscriber: tokio::task::JoinHandle<()>,
}

impl Drop for RedisStore {
    fn drop(&mut self) {
        self.subscriber.abort();
    }
}

impl RedisStore {
    /// Prepares a connection without dialing: the service starts even while Redis is away,
    /// and calls fail fast with `Unavailable` until it is back.
    pub fn new(url: &str) -> Result<Self, String> {
        use redis::IntoConnectionInfo;
        let invalid = |e: RedisError| format!("invalid Redis URL: {}", e.kind_description());
        // Nagle's algorithm would hold a script's small request for the peer's delayed ACK.
        let info = url
            .into_connection_info()
            .map_err(invalid)?
            .set_tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true));
        let client = redis::Client::open(info).map_err(invalid)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let connection = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .map_err(|e| format!("cannot prepare the Redis connection: {e}"))?;
        let changes = broadcast::channel(CHANGE_FEED_CAPACITY).0;
        let subscriber = tokio::spawn(follow_changes(client, changes.clone()));
        Ok(Self {
            connection,
            changes,
            subscriber,
        })
    }

    async fn run<T: redis::FromRedisValue>(
        &self,
        operation: &'static str,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        let mut connection = self.connection.clone();
        bounded(operation, invocation.invoke_async(&mut connection)).await
    }
}

/// Relays the changes channel to this replica's watchers for as long as the store lives,
/// reconnecting (with a bounded pause) whenever Redis goes away. After every (re)connection
/// the watchers are told to resync, since announcements made meanwhile were lost.
async fn follow_changes(client: redis::Client, changes: broadcast::Sender<ChangeNotice>) {
    const PAUSE_MIN: Duration = Duration::from_millis(100);
    const PAUSE_MAX: Duration = Duration::from_secs(2);
    let mut pause = PAUSE_MIN;
    loop {
        let subscribed = tokio::time::timeout(OPERATION_TIMEOUT, async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(CHANGES_CHANNEL).await?;
            Ok::<_, RedisError>(pubsub)
        })
        .await;
        match subscribed {
            Ok(Ok(pubsub)) => {
                pause = PAUSE_MIN;
                let _ = changes.send(ChangeNotice::Resync);
                let mut messages = pubsub.into_on_message();
                while let Some(message) = messages.next().await {
                    match serde_json::from_slice::<Payin>(message.get_payload_bytes()) {
                        Ok(payin) => {
                            let _ = changes.send(ChangeNotice::Changed(Arc::new(payin)));
                        }
                        Err(e) => tracing::warn!("unreadable change announcement: {e}"),
                    }
                }
                tracing::warn!("redis change feed lost; reconnecting");
                let _ = changes.send(ChangeNotice::Resync);
            }
            Ok(Err(e)) => {
                tracing::debug!(error = %e.kind_description(), "redis change feed unavailable")
            }
            Err(_) => tracing::debug!("redis change feed connection timed out"),
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(PAUSE_MAX);
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

/// One Redis round trip: bounded in time, a client span, and counted when it fails.
async fn bounded<T>(
    operation: &'static str,
    future: impl Future<Output = Result<T, RedisError>>,
) -> Result<T, StoreError> {
    use tracing::Instrument;
    let span = tracing::info_span!(
        "redis",
        otel.name = format!("redis {operation}"),
        otel.kind = "client",
        db.system = "redis",
        db.operation = operation,
    );
    let outcome = tokio::time::timeout(OPERATION_TIMEOUT, future)
        .instrument(span)
        .await;
    if !matches!(outcome, Ok(Ok(_))) {
        metrics::counter!(REDIS_ERRORS, "operation" => operation).increment(1);
    }
    match outcome {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => {
            tracing::warn!(operation, error = %e.kind_description(), "redis call failed");
            Err(StoreError::Unavailable(format!(
                "Redis error ({})",
                e.kind_description()
            )))
        }
        Err(_) => {
            tracing::warn!(operation, "redis call timed out");
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
                "begin",
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

    async fn renew(
        &self,
        scope: IdempotencyScope<'_>,
        owner: &str,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        let renewed: i64 = self
            .run(
                "renew",
                RENEW.key(record_key(scope)).arg(owner).arg(millis(lease)),
            )
            .await?;
        Ok(renewed == 1)
    }

    async fn finish(
        &self,
        scope: IdempotencyScope<'_>,
        owner: &str,
        outcome: &StoredOutcome,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let kept: i64 = self
            .run(
                "finish",
                FINISH
                    .key(record_key(scope))
                    .arg(owner)
                    .arg(outcome.code)
                    .arg(&outcome.message)
                    .arg(&outcome.body[..])
                    .arg(millis(ttl)),
            )
            .await?;
        Ok(kept == 1)
    }

    async fn release(&self, scope: IdempotencyScope<'_>, owner: &str) -> Result<bool, StoreError> {
        let released: i64 = self
            .run("release", RELEASE.key(record_key(scope)).arg(owner))
            .await?;
        Ok(released == 1)
    }

    async fn forget(&self, scope: IdempotencyScope<'_>, owner: &str) -> Result<bool, StoreError> {
        let forgotten: i64 = self
            .run("forget", FORGET.key(record_key(scope)).arg(owner))
            .await?;
        Ok(forgotten == 1)
    }

    async fn claim_reference(
        &self,
        reference: &str,
        key: &str,
        ttl: Duration,
    ) -> Result<Claim, StoreError> {
        let claimed: i64 = self
            .run(
                "claim_reference",
                CLAIM
                    .key(reference_claim_key(reference))
                    .arg(key)
                    .arg(millis(ttl)),
            )
            .await?;
        Ok(Claim::from_script(claimed))
    }

    async fn unclaim_reference(&self, reference: &str, key: &str) -> Result<(), StoreError> {
        let _: i64 = self
            .run(
                "unclaim_reference",
                UNCLAIM.key(reference_claim_key(reference)).arg(key),
            )
            .await?;
        Ok(())
    }

    async fn load_payin(&self, reference: &str) -> Result<Option<Payin>, StoreError> {
        let mut connection = self.connection.clone();
        let data: Option<Vec<u8>> = bounded(
            "load_payin",
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
            "reference_for_provider",
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
        options: SaveOptions,
    ) -> Result<bool, StoreError> {
        let data = serde_json::to_vec(payin).expect("a payin serializes");
        let flag = |b: bool| if b { "1" } else { "0" };
        let saved: i64 = self
            .run(
                "save_payin",
                SAVE_PAYIN
                    .key(payin_key(&payin.reference))
                    .key(provider_index_key(&payin.provider_reference))
                    .key(OPEN_PAYINS_KEY)
                    .key(reference_claim_key(&payin.reference))
                    .arg(expected_version)
                    .arg(payin.version)
                    .arg(data)
                    .arg(millis(options.ttl))
                    .arg(&payin.reference)
                    .arg(flag(!payin.provider_reference.is_empty()))
                    .arg(flag(payin.status.is_terminal()))
                    .arg(flag(options.announce))
                    .arg(millis(options.reconcile_after))
                    .arg(CHANGES_CHANNEL),
            )
            .await?;
        Ok(saved == 1)
    }

    fn changes(&self) -> broadcast::Receiver<ChangeNotice> {
        self.changes.subscribe()
    }

    async fn try_poll_lease(
        &self,
        reference: &str,
        interval: Duration,
    ) -> Result<bool, StoreError> {
        let mut connection = self.connection.clone();
        let taken: Option<String> = bounded(
            "try_poll_lease",
            redis::cmd("SET")
                .arg(format!("pgw:poll-lease:{reference}"))
                .arg(1)
                .arg("NX")
                .arg("PX")
                .arg(millis(interval))
                .query_async(&mut connection),
        )
        .await?;
        Ok(taken.is_some())
    }

    async fn claim_due_reconciliations(
        &self,
        limit: usize,
        hold: Duration,
    ) -> Result<Vec<String>, StoreError> {
        self.run(
            "claim_due_reconciliations",
            CLAIM_DUE.key(OPEN_PAYINS_KEY).arg(limit).arg(millis(hold)),
        )
        .await
    }

    async fn schedule_reconciliation(
        &self,
        reference: &str,
        after: Duration,
    ) -> Result<(), StoreError> {
        let _: i64 = self
            .run(
                "schedule_reconciliation",
                SCHEDULE
                    .key(OPEN_PAYINS_KEY)
                    .arg(millis(after))
                    .arg(reference),
            )
            .await?;
        Ok(())
    }

    async fn unschedule_reconciliation(&self, reference: &str) -> Result<(), StoreError> {
        let mut connection = self.connection.clone();
        let _: i64 = bounded(
            "unschedule_reconciliation",
            redis::cmd("ZREM")
                .arg(OPEN_PAYINS_KEY)
                .arg(reference)
                .query_async(&mut connection),
        )
        .await?;
        Ok(())
    }

    async fn mark_refund_sent(
        &self,
        reference: &str,
        holder: &str,
    ) -> Result<Option<Claim>, StoreError> {
        let marked: i64 = self
            .run(
                "mark_refund_sent",
                MARK_REFUND_SENT.key(payin_key(reference)).arg(holder),
            )
            .await?;
        Ok((marked >= 0).then(|| Claim::from_script(marked)))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut connection = self.connection.clone();
        let _: String = bounded("ping", redis::cmd("PING").query_async(&mut connection)).await?;
        Ok(())
    }
}
