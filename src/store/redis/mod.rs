//! The Redis store. Every check-then-act runs as one Lua script (scripts.rs), so replicas
//! cannot race; one connection (connection.rs) and one change feed (feed.rs) per replica.

mod connection;
mod feed;
mod scripts;

use super::{
    Acquired, Begin, CHANGE_FEED_CAPACITY, ChangeNotice, Claim, IdempotencyScope, PollLease,
    ReferenceClaim, SaveOptions, Store, StoreError, StoredOutcome, new_owner,
};
use crate::domain::Payin;
use async_trait::async_trait;
use connection::{Connection, OPERATION_TIMEOUT};
use redis::RedisError;
use scripts::*;
use std::time::Duration;
use tokio::sync::broadcast;

/// The pub/sub channel on which every saved change is announced, as the payin's JSON.
const CHANGES_CHANNEL: &str = "pgw:payin-changes";
const OPEN_PAYINS_KEY: &str = "pgw:open-payins";

pub struct RedisStore {
    connection: Connection,
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
    pub fn new(config: &crate::config::RedisConfig) -> Result<Self, String> {
        use secrecy::ExposeSecret;
        let crate::config::RedisTopology::Single(url) = &config.topology else {
            return Err("this Redis topology is not supported yet".into());
        };
        Self::single(url.expose_secret())
    }

    fn single(url: &str) -> Result<Self, String> {
        use redis::IntoConnectionInfo;
        let invalid = |e: RedisError| format!("invalid Redis URL: {}", e.kind_description());
        // Nagle's algorithm would hold a script's small request for the peer's delayed ACK.
        let info = url
            .into_connection_info()
            .map_err(invalid)?
            .set_tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true));
        let client = redis::Client::open(info).map_err(invalid)?;
        let connection = Connection::new(client.clone())?;
        let changes = broadcast::channel(CHANGE_FEED_CAPACITY).0;
        let subscriber = tokio::spawn(feed::follow_changes(client, changes.clone()));
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

fn record_key(scope: IdempotencyScope<'_>) -> String {
    format!("pgw:idem:{}:{}", scope.operation, scope.key)
}

fn payin_key(reference: &str) -> String {
    format!("pgw:payin:{reference}")
}

fn provider_index_key(provider: &str, provider_reference: &str) -> String {
    format!("pgw:payin-by-provider:{provider}:{provider_reference}")
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

fn number(bytes: Vec<u8>) -> Result<i64, StoreError> {
    utf8(bytes)?
        .parse()
        .map_err(|_| StoreError::Corrupt("a script answered something not a number".into()))
}

#[async_trait]
impl Store for RedisStore {
    async fn begin(
        &self,
        scope: IdempotencyScope<'_>,
        fingerprint: &str,
        lease: Duration,
        ttl: Duration,
        claim: Option<ReferenceClaim<'_>>,
    ) -> Result<Begin, StoreError> {
        let owner = new_owner();
        let mut invocation = BEGIN.key(record_key(scope));
        invocation
            .arg(fingerprint)
            .arg(&owner)
            .arg(millis(lease))
            .arg(millis(ttl));
        if let Some(claim) = claim {
            invocation
                .key(reference_claim_key(claim.reference))
                .arg(scope.key)
                .arg(millis(claim.ttl))
                .arg(claim.provider);
        }
        let reply: Vec<Vec<u8>> = self.run("begin", &invocation).await?;
        let mut parts = reply.into_iter();
        let tag = parts.next().map(utf8).transpose()?.unwrap_or_default();
        match tag.as_str() {
            "acquired" => {
                let resumed = parts.next().is_some_and(|flag| flag == b"1");
                let reference = parts
                    .next()
                    .map(|claimed| Ok::<_, StoreError>(Claim::from_script(number(claimed)?)))
                    .transpose()?;
                let provider = parts
                    .next()
                    .map(utf8)
                    .transpose()?
                    .filter(|p| !p.is_empty());
                Ok(Begin::Acquired(Acquired {
                    owner,
                    resumed,
                    reference,
                    provider,
                }))
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
                let code = i32::try_from(number(code)?)
                    .map_err(|_| StoreError::Corrupt("stored code is out of range".into()))?;
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

    async fn recorded_provider(
        &self,
        scope: IdempotencyScope<'_>,
        fingerprint: &str,
    ) -> Result<Option<String>, StoreError> {
        let (recorded_fingerprint, provider): (Option<String>, Option<String>) = self
            .query(
                "recorded_provider",
                redis::cmd("HMGET")
                    .arg(record_key(scope))
                    .arg("fp")
                    .arg("provider"),
            )
            .await?;
        Ok(provider
            .filter(|p| !p.is_empty())
            .filter(|_| recorded_fingerprint.as_deref() == Some(fingerprint)))
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
        let data: Option<Vec<u8>> = self
            .query(
                "load_payin",
                redis::cmd("HGET").arg(payin_key(reference)).arg("data"),
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
        provider: &str,
        provider_reference: &str,
    ) -> Result<Option<String>, StoreError> {
        self.query(
            "reference_for_provider",
            redis::cmd("GET").arg(provider_index_key(provider, provider_reference)),
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
                    .key(provider_index_key(
                        &payin.provider,
                        &payin.provider_reference,
                    ))
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

    async fn drop_payin(&self, payin: &Payin) -> Result<(), StoreError> {
        let _: i64 = self
            .run(
                "drop_payin",
                DROP_PAYIN
                    .key(payin_key(&payin.reference))
                    .key(provider_index_key(
                        &payin.provider,
                        &payin.provider_reference,
                    ))
                    .key(OPEN_PAYINS_KEY)
                    .arg(payin.version)
                    .arg(&payin.reference),
            )
            .await?;
        Ok(())
    }

    fn changes(&self) -> broadcast::Receiver<ChangeNotice> {
        self.changes.subscribe()
    }

    async fn try_poll_lease(
        &self,
        reference: &str,
        interval: Duration,
    ) -> Result<PollLease, StoreError> {
        let remaining: i64 = self
            .run(
                "try_poll_lease",
                POLL_LEASE
                    .key(format!("pgw:poll-lease:{reference}"))
                    .arg(millis(interval)),
            )
            .await?;
        Ok(match u64::try_from(remaining) {
            Ok(ms) => PollLease::HeldFor(Duration::from_millis(ms)),
            Err(_) => PollLease::Taken,
        })
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
        let _: i64 = self
            .query(
                "unschedule_reconciliation",
                redis::cmd("ZREM").arg(OPEN_PAYINS_KEY).arg(reference),
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
        let _: String = self.query("ping", &redis::cmd("PING")).await?;
        Ok(())
    }
}
