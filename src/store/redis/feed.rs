//! The change feed: one pub/sub subscription per replica, relayed to its watchers.

use super::connection::Connection;
use super::{CHANGES_CHANNEL, KindDescription, OPERATION_TIMEOUT};
use crate::domain::Payin;
use crate::store::ChangeNotice;
use futures_util::StreamExt;
use redis::RedisError;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;

/// How often a quiet subscription is checked with a PING, and how long its answer may take:
/// a half-open socket or a dead node delivers nothing and says nothing.
const LIVENESS_PERIOD: Duration = Duration::from_secs(2);
const LIVENESS_TIMEOUT: Duration = Duration::from_secs(2);

/// Relays the changes channel to this replica's watchers for as long as the store lives,
/// reconnecting (with a bounded pause) whenever the subscription fails or falls silent: the
/// node it listens to is found again each time (the sentinels' primary, or the next seed of
/// a cluster, where every node hears every announcement). After every (re)connection the
/// watchers are told to resync, since announcements made meanwhile were lost.
pub async fn follow_changes(connection: Arc<Connection>, changes: broadcast::Sender<ChangeNotice>) {
    const PAUSE_MIN: Duration = Duration::from_millis(100);
    const PAUSE_MAX: Duration = Duration::from_secs(2);
    let mut pause = PAUSE_MIN;
    for attempt in 0usize.. {
        let subscribed = tokio::time::timeout(OPERATION_TIMEOUT, async {
            let client = connection.dialer().subscriber_client(attempt).await?;
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(CHANGES_CHANNEL).await?;
            Ok::<_, RedisError>(pubsub)
        })
        .await;
        match subscribed {
            Ok(Ok(pubsub)) => {
                pause = PAUSE_MIN;
                let _ = changes.send(ChangeNotice::Resync);
                relay(pubsub, &changes).await;
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

/// Relays announcements until the subscription ends or stops answering PINGs.
async fn relay(pubsub: redis::aio::PubSub, changes: &broadcast::Sender<ChangeNotice>) {
    let (mut sink, mut messages) = pubsub.split();
    let start = tokio::time::Instant::now() + LIVENESS_PERIOD;
    let mut liveness = tokio::time::interval_at(start, LIVENESS_PERIOD);
    liveness.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            message = messages.next() => {
                let Some(message) = message else { return };
                match serde_json::from_slice::<Payin>(message.get_payload_bytes()) {
                    Ok(payin) => {
                        let _ = changes.send(ChangeNotice::Changed(Arc::new(payin)));
                    }
                    Err(e) => tracing::warn!("unreadable change announcement: {e}"),
                }
            }
            _ = liveness.tick() => {
                let answered = tokio::time::timeout(LIVENESS_TIMEOUT, sink.ping::<redis::Value>()).await;
                if !matches!(answered, Ok(Ok(_))) {
                    tracing::warn!("redis change feed silent: no answer to PING");
                    return;
                }
            }
        }
    }
}
