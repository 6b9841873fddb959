//! Writes that replicas must acknowledge before any provider call (contract §10): the
//! idempotency record, the reference claim and the refund-sent mark. With
//! PAYMENTS_REDIS_WAIT_REPLICAS above 0 each such script is sent with its WAIT as one
//! pipeline, on one socket to the primary that runs it, so the acknowledgement is surely for
//! this write on that server (a reconnection or a redirection between two separate round
//! trips could ask a new primary about a write it never saw). They use a connection of their
//! own: Redis blocks the client that sent WAIT, and everything queued behind it, for up to
//! WAIT's timeout while replicas are missing; reads, webhooks and renewals must not wait
//! with them.

use super::connection::{Connection, Link, must_redial};
use super::{RedisStore, StoreError};
use crate::telemetry::metrics::REDIS_ERRORS;
use redis::{ErrorKind, RedisError, Script, ServerErrorKind, ToRedisArgs, Value};

/// How long a claim waits for its replicas' acknowledgement (contract §10).
const WAIT_FOR_REPLICAS_MS: u64 = 1000;

/// A script with its keys and arguments, runnable either way.
pub struct ScriptCall<'a> {
    script: &'a Script,
    keys: Vec<String>,
    args: Vec<Vec<u8>>,
}

impl<'a> ScriptCall<'a> {
    pub fn new(script: &'a Script) -> Self {
        Self {
            script,
            keys: Vec::new(),
            args: Vec::new(),
        }
    }

    pub fn key(mut self, key: String) -> Self {
        self.keys.push(key);
        self
    }

    pub fn arg(mut self, arg: impl ToRedisArgs) -> Self {
        self.args.extend(arg.to_redis_args());
        self
    }

    /// The key whose slot runs the script (the first).
    fn routing_key(&self) -> &str {
        self.keys.first().map_or("", String::as_str)
    }

    fn invocation(&self) -> redis::ScriptInvocation<'a> {
        let mut invocation = self.script.prepare_invoke();
        for key in &self.keys {
            invocation.key(key);
        }
        for arg in &self.args {
            invocation.arg(arg);
        }
        invocation
    }

    /// EVALSHA, then WAIT: one pipeline.
    fn with_wait(&self, replicas: u32) -> redis::Pipeline {
        let mut pipeline = redis::pipe();
        pipeline
            .cmd("EVALSHA")
            .arg(self.script.get_hash())
            .arg(self.keys.len())
            .arg(&self.keys)
            .arg(&self.args)
            .cmd("WAIT")
            .arg(replicas)
            .arg(WAIT_FOR_REPLICAS_MS);
        pipeline
    }
}

impl RedisStore {
    /// Runs a claim's script and tells whether the replicas required hold its write (always,
    /// when none is required). What needs the acknowledgement is the caller's to say: a
    /// replayed record does not, a claim that a provider call follows does.
    pub(super) async fn run_claim<T: redis::FromRedisValue>(
        &self,
        operation: &'static str,
        call: ScriptCall<'_>,
    ) -> Result<(T, bool), StoreError> {
        let Some(claims) = &self.claims else {
            return Ok((self.run(operation, &call.invocation()).await?, true));
        };
        let replicas = self.wait_replicas;
        let (reply, acknowledged) = match pipelined(claims, operation, &call, replicas).await? {
            Some(replied) => replied,
            None => {
                load(claims, &call).await?;
                pipelined(claims, operation, &call, replicas)
                    .await?
                    .ok_or_else(|| {
                        StoreError::Unavailable("Redis lost a script just loaded".into())
                    })?
            }
        };
        let reply = redis::from_redis_value(reply)
            .map_err(|e| StoreError::Corrupt(format!("unexpected {operation} reply: {e}")))?;
        Ok((reply, acknowledged >= i64::from(replicas)))
    }

    /// The error of a claim its replicas did not acknowledge (counted as a Redis error of
    /// operation `wait`, so that operators see why creates fail closed).
    pub(super) fn unacknowledged(&self) -> StoreError {
        metrics::counter!(REDIS_ERRORS, "operation" => "wait").increment(1);
        StoreError::Unavailable(format!(
            "fewer than the {} Redis replicas required acknowledged the claim within 1 s",
            self.wait_replicas
        ))
    }
}

/// The script's reply and how many replicas acknowledged it; `None`: the primary has not
/// loaded the script (nothing ran).
async fn pipelined(
    claims: &Connection,
    operation: &'static str,
    call: &ScriptCall<'_>,
    replicas: u32,
) -> Result<Option<(Value, i64)>, StoreError> {
    let pipeline = call.with_wait(replicas);
    let key = call.routing_key();
    let replies = claims
        .call(operation, |link| async move {
            let replies: Vec<Value> = match link {
                Link::Single(mut c) => {
                    let mut pipeline = pipeline;
                    pipeline.ignore_errors().query_async(&mut c).await?
                }
                Link::Cluster(mut c) => {
                    let mut pipeline = pipeline;
                    pipeline.ignore_errors();
                    c.route_pipeline(pipeline, 0, 2, primary_of(key)).await?
                }
            };
            // An error inside the pipeline may come back as a value, not as the call's error:
            // one that says this connection reaches the wrong server (a demoted primary, a
            // moved slot) is raised, so that the link is dropped and the next claim finds the
            // primary again.
            if let Some(Value::ServerError(e)) = replies.first() {
                let e = RedisError::from(e.clone());
                if must_redial(&e) {
                    return Err(e);
                }
            }
            Ok(replies)
        })
        .await?;
    let mut replies = replies.into_iter();
    let (Some(reply), Some(acknowledged)) = (replies.next(), replies.next()) else {
        return Err(StoreError::Corrupt(format!(
            "{operation}: short pipeline reply"
        )));
    };
    if let Value::ServerError(e) = &reply {
        let e = RedisError::from(e.clone());
        return match e.kind() {
            ErrorKind::Server(ServerErrorKind::NoScript) => Ok(None),
            kind => Err(StoreError::Unavailable(format!("Redis error ({kind:?})"))),
        };
    }
    let acknowledged = redis::from_redis_value::<i64>(acknowledged).unwrap_or(0);
    Ok(Some((reply, acknowledged)))
}

/// Loads the script (on every primary of a cluster): a new primary after a failover has
/// none cached.
async fn load(claims: &Connection, call: &ScriptCall<'_>) -> Result<(), StoreError> {
    let script = call.script;
    claims
        .call("script_load", |mut link| async move {
            script.load_async(&mut link).await
        })
        .await?;
    Ok(())
}

fn primary_of(key: &str) -> redis::cluster_routing::SingleNodeRoutingInfo {
    use redis::cluster_routing::{Route, SingleNodeRoutingInfo, SlotAddr};
    SingleNodeRoutingInfo::SpecificNode(Route::with_key(key, SlotAddr::Master))
}
